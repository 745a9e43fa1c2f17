package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

class ContentRangeTest {
  @Test
  void parsesTheSingleRangeForm() {
    assertEquals(new ContentRange(10, 19, 100000), ContentRange.parse("bytes 10-19/100000"));
    assertEquals(new ContentRange(0, 0, -1), ContentRange.parse(" Bytes 0-0/* "));
    assertEquals(10, ContentRange.parse("bytes 10-19/100000").length());
  }

  @Test
  void refusesEverythingElse() {
    for (String s :
        new String[] {
          null,
          "",
          "bytes */100",
          "items 0-1/2",
          "bytes 5-4/10",
          "bytes 0-10/10",
          "bytes -1-3/10",
          "bytes 0-x/10",
          "bytes 0-1",
          "multipart/byteranges",
          "bytes 0-1/2, 4-5/6"
        }) {
      assertNull(ContentRange.parse(s), s);
    }
  }
}

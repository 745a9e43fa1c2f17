package dev.lazypull.prefetch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Json;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class AccessProfileTest {
  private static AccessProfile profile(int ranges) {
    List<AccessProfile.Range> rs = new ArrayList<>();
    for (int i = 0;
        i < ranges;
        i++) { // the widest numbers a real profile has: 100 TB offsets, 2 GiB lengths
      rs.add(
          new AccessProfile.Range(
              "sha256:" + "f".repeat(64), 99_999_999_999_999L - i, Integer.MAX_VALUE));
    }
    return new AccessProfile(1, "sha256:" + "e".repeat(64), Long.MAX_VALUE, rs);
  }

  @Test
  void aFullProfileIsSavedSmallEnoughToBeLoadedAgain() throws Exception {
    byte[] json = Json.write(profile(AccessProfile.MAX_RANGES));
    assertTrue(json.length <= Json.MAX_DOCUMENT_BYTES, json.length + " bytes");
    assertEquals(AccessProfile.MAX_RANGES, AccessProfile.parse(json, "test").ranges().size());
  }

  @Test
  void moreRangesThanRecordedAreRefused() {
    byte[] json = Json.write(profile(AccessProfile.MAX_RANGES + 1));
    IOException e = assertThrows(IOException.class, () -> AccessProfile.parse(json, "test"));
    assertTrue(e.getMessage().contains("test"), e.getMessage());
  }
}

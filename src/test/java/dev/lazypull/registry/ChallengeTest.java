package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class ChallengeTest {
  @Test
  void bearerWithQuotedCommasAndAnError() {
    List<Challenge> cs =
        Challenge.parse(
            "Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
                + "scope=\"repository:team/app:pull,push\",error=\"insufficient_scope\"");
    assertEquals(1, cs.size());
    Challenge c = cs.get(0);
    assertTrue(c.isBearer());
    assertEquals("https://auth.example/token", c.param("realm"));
    assertEquals("registry.example", c.param("service"));
    assertEquals("repository:team/app:pull,push", c.param("scope"));
    assertEquals("insufficient_scope", c.param("error"));
  }

  @Test
  void severalChallengesInOneHeaderCaseInsensitiveNamesAndEscapes() {
    List<Challenge> cs =
        Challenge.parse(
            "basic Realm=\"a \\\"quoted\\\" realm\", BEARER realm=\"r\" , "
                + "service = svc ,  Negotiate abc123==");
    assertEquals(3, cs.size());
    assertTrue(cs.get(0).isBasic());
    assertEquals("a \"quoted\" realm", cs.get(0).param("realm"));
    assertTrue(cs.get(1).isBearer());
    assertEquals("r", cs.get(1).param("REALM"));
    assertEquals("svc", cs.get(1).param("service"));
    assertEquals("negotiate", cs.get(2).scheme());
    assertEquals("abc123==", cs.get(2).token68());
  }

  @Test
  void bareSchemeAndMultipleHeaderValues() {
    List<Challenge> cs = Challenge.parseAll(List.of("Basic", "Bearer realm=\"x\""));
    assertEquals(2, cs.size());
    assertTrue(cs.get(0).params().isEmpty());
    assertEquals("x", cs.get(1).param("realm"));
  }

  @Test
  void garbageNeverThrowsOrLoops() {
    for (String s :
        new String[] {
          "",
          ",,,",
          "\"",
          "Bearer realm=\"unterminated",
          "=== ,",
          "Bearer ,=,=",
          "Bearer realm=",
          "(x)",
          "Basic realm=\"r\" junk@@@",
          "Bearer a=\"1\" b=\"2\""
        }) {
      Challenge.parse(s); // must terminate
    }
    assertEquals(
        "unterminated", Challenge.parse("Bearer realm=\"unterminated").get(0).param("realm"));
    assertNull(Challenge.parse("Bearer").get(0).param("realm"));
    assertTrue(Challenge.parse("").isEmpty());
  }
}

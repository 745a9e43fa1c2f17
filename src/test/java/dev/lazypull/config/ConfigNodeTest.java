package dev.lazypull.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.IntNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.TextNode;
import com.fasterxml.jackson.dataformat.toml.TomlMapper;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

class ConfigNodeTest {
  private static final String FILE = "/etc/lazypull/test.toml";

  private static ConfigNode toml(String text) throws Exception {
    return new ConfigNode(new TomlMapper().readTree(text), "", FILE);
  }

  /** The error {@code call} throws, which must name the file. */
  private static String error(Executable call) {
    ConfigException e = assertThrows(ConfigException.class, call);
    assertTrue(e.getMessage().startsWith(FILE + ": "), e.getMessage());
    return e.getMessage();
  }

  @Test
  void sizesInUnitsAndTheirSpellings() {
    assertEquals(4096, ConfigNode.parseSize("4096"));
    assertEquals(1L << 20, ConfigNode.parseSize("1M"));
    assertEquals(1L << 20, ConfigNode.parseSize("1m"));
    assertEquals(1L << 20, ConfigNode.parseSize("1MB"), "every unit is binary: MB is MiB");
    assertEquals(512L << 10, ConfigNode.parseSize("512KiB"));
    assertEquals(512L << 10, ConfigNode.parseSize(" 512 KiB "));
    assertEquals(4L << 30, ConfigNode.parseSize("4G"));
    assertEquals(3L << 40, ConfigNode.parseSize("3T"));
    assertEquals(0, ConfigNode.parseSize("0K"));
    assertEquals(7, ConfigNode.parseSize("7B"));
    assertEquals(Long.MAX_VALUE, ConfigNode.parseSize(Long.toString(Long.MAX_VALUE)));
    assertEquals(
        8388607L << 40, ConfigNode.parseSize("8388607T"), "the largest T that fits in a long");
  }

  @Test
  void malformedNegativeAndOverflowingSizesAreRefused() {
    for (String bad :
        List.of(
            "",
            "  ",
            "K",
            "KiB",
            "B",
            "-1",
            "-1K",
            "1.5M",
            "1X",
            "1 2M",
            "M1",
            "0x10",
            "8388608T",
            "9223372036854775808",
            "16384P")) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class, () -> ConfigNode.parseSize(bad), "'" + bad + "'");
      assertTrue(
          e.getMessage().contains("not a size") && e.getMessage().endsWith(": " + bad),
          e.getMessage());
    }
  }

  @Test
  void durationsInUnits() {
    assertEquals(Duration.ofMillis(500), ConfigNode.parseDuration("500ms"));
    assertEquals(Duration.ofSeconds(30), ConfigNode.parseDuration("30s"));
    assertEquals(Duration.ofMillis(1500), ConfigNode.parseDuration("1.5s"));
    assertEquals(
        Duration.ofMinutes(2), ConfigNode.parseDuration("2m"), "m is minutes, not milliseconds");
    assertEquals(
        Duration.ofSeconds(90), ConfigNode.parseDuration("1.5m"), "fractions in every unit");
    assertEquals(Duration.ofHours(3), ConfigNode.parseDuration("3h"));
    assertEquals(
        Duration.ofSeconds(45), ConfigNode.parseDuration("45"), "a bare number is seconds");
    assertEquals(Duration.ofSeconds(5), ConfigNode.parseDuration(" 5 S "));
    assertEquals(Duration.ZERO, ConfigNode.parseDuration("0ms"));
  }

  @Test
  void malformedDurationsAreRefused() {
    for (String bad :
        List.of(
            "",
            "s",
            "ms",
            "1d",
            "1.5ms",
            "NaNs",
            "Infinitys",
            "1e3s",
            "-1s",
            "five",
            "1 h 2",
            "m5")) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class, () -> ConfigNode.parseDuration(bad), "'" + bad + "'");
      assertTrue(e.getMessage().contains("not a duration"), e.getMessage());
    }
  }

  @Test
  void typedGettersReturnValuesOrDefaults() throws Exception {
    ConfigNode d =
        toml(
            """
        name = "x"
        on = true
        workers = 8
        budget = "2G"
        chunk = 65536
        timeout = "250ms"
        grace = 3
        hosts = ["a", "b"]
        """);
    assertEquals("x", d.string("name", "dflt"));
    assertEquals("dflt", d.string("absent", "dflt"));
    assertTrue(d.bool("on", false));
    assertFalse(d.bool("absent", false));
    assertEquals(8, d.integer("workers", 1, 1, 64));
    assertEquals(1, d.integer("absent", 1, 1, 64));
    assertEquals(2L << 30, d.size("budget", 0, 0, Long.MAX_VALUE));
    assertEquals(65536, d.size("chunk", 0, 4096, 1 << 20), "a plain integer is bytes");
    assertEquals(123, d.size("absent", 123, 0, 1));
    assertEquals(Duration.ofMillis(250), d.duration("timeout", Duration.ZERO));
    assertEquals(
        Duration.ofSeconds(3),
        d.duration("grace", Duration.ZERO),
        "an integer duration is seconds");
    assertEquals(Duration.ofSeconds(9), d.duration("absent", Duration.ofSeconds(9)));
    assertEquals(List.of("a", "b"), d.strings("hosts"));
    assertEquals(List.of(), d.strings("absent"));
    assertTrue(d.has("name"));
    assertFalse(d.has("absent"));
  }

  @Test
  void wrongTypesAreRefusedNamingTheKey() throws Exception {
    ConfigNode d =
        toml("""
        [daemon]
        name = 5
        on = "yes"
        workers = 2.5
        budget = true
        timeout = "-1s"
        grace = -3
        hosts = ["a", 1]
        single = "a"
        """)
            .section("daemon");
    assertTrue(error(() -> d.string("name", null)).endsWith("daemon.name: must be a string"));
    assertTrue(error(() -> d.bool("on", false)).endsWith("daemon.on: must be true or false"));
    assertTrue(
        error(() -> d.integer("workers", 1, 1, 64)).endsWith("daemon.workers: must be an integer"));
    assertTrue(error(() -> d.size("budget", 0, 0, 10)).contains("daemon.budget: must be a size"));
    assertTrue(
        error(() -> d.duration("timeout", null)).contains("daemon.timeout: must be a duration"),
        "negative durations are refused");
    assertTrue(error(() -> d.duration("grace", null)).contains("daemon.grace: must be a duration"));
    assertTrue(
        error(() -> d.strings("hosts")).endsWith("daemon.hosts: must be an array of strings"));
    assertTrue(
        error(() -> d.strings("single")).endsWith("daemon.single: must be an array of strings"));
  }

  @Test
  void boundsAreInclusiveAndNamedInTheError() throws Exception {
    ConfigNode d =
        toml(
            """
        low = 1
        high = 64
        over = 65
        size = "1K"
        small = 4095
        """);
    assertEquals(1, d.integer("low", 0, 1, 64));
    assertEquals(64, d.integer("high", 0, 1, 64));
    assertTrue(error(() -> d.integer("over", 0, 1, 64)).endsWith("over: 65 is outside [1, 64]"));
    assertTrue(error(() -> d.integer("low", 0, 2, 64)).endsWith("low: 1 is outside [2, 64]"));
    assertEquals(1024, d.size("size", 0, 1024, 1024));
    assertTrue(
        error(() -> d.size("size", 0, 4096, 1 << 20))
            .endsWith("size: 1024 bytes is outside [4096, 1048576]"));
    assertTrue(error(() -> d.size("small", 0, 4096, 1 << 20)).contains("4095 bytes is outside"));
    assertTrue(error(() -> toml("s = \"lots\"").size("s", 0, 0, 1)).contains("s: not a size"));
  }

  @Test
  void unknownKeysAreRefusedListingTheKnownOnes() throws Exception {
    ConfigNode root =
        toml(
            """
        [daemon]
        cache_dir = "/x"
        cahce_budget = "1G"
        """);
    ConfigNode daemon = root.allowOnly("daemon", "registry").section("daemon");
    String e = error(() -> daemon.allowOnly("cache_dir", "cache_budget"));
    assertTrue(e.endsWith("unknown key daemon.cahce_budget (known: cache_dir, cache_budget)"), e);
    assertTrue(
        error(() -> root.allowOnly("registry")).contains("unknown key daemon (known: registry)"));
  }

  @Test
  void sectionsNestAndNameTheirPath() throws Exception {
    ConfigNode root =
        toml(
            """
        daemon = "not a table"
        [registry]
        plain_http = ["a"]
        [[registry.mirror]]
        host = "m1"
        [[registry.mirror]]
        host = 7
        """);
    assertTrue(error(() -> root.section("daemon")).endsWith("daemon: must be a table"));
    ConfigNode reg = root.section("registry");
    assertTrue(reg.isPresent());
    List<ConfigNode> mirrors = reg.sections("mirror");
    assertEquals(2, mirrors.size());
    assertEquals("m1", mirrors.get(0).string("host", null));
    assertTrue(
        error(() -> mirrors.get(1).string("host", null))
            .endsWith("registry.mirror[1].host: must be a string"));
    assertTrue(
        error(() -> reg.sections("plain_http"))
            .endsWith("registry.plain_http: entry 0 must be a table"));
    assertTrue(
        error(() -> toml("[registry]\nmirror = 3").section("registry").sections("mirror"))
            .endsWith("registry.mirror: must be an array of tables ([[registry.mirror]])"));
    assertEquals(List.of(), reg.sections("absent"));

    ConfigNode absent = root.section("nothing");
    assertFalse(absent.isPresent());
    assertEquals("d", absent.string("k", "d"), "an absent section gives every default");
    assertSame(absent, absent.allowOnly(), "and has no unknown keys");
    assertFalse(absent.section("deeper").isPresent());
  }

  @Test
  void aFileThatIsNotATableIsRefusedAndEmptyConfigsGiveDefaults() throws Exception {
    ConfigNode notATable = new ConfigNode(new TextNode("x"), "", FILE);
    assertTrue(error(() -> notATable.allowOnly("daemon")).endsWith("the file must be a table"));
    ConfigNode nested = new ConfigNode(new IntNode(1), "daemon", FILE);
    assertTrue(error(() -> nested.allowOnly("x")).endsWith("daemon must be a table"));

    ConfigNode empty = ConfigNode.empty("daemon");
    assertFalse(empty.isPresent());
    assertEquals(
        5,
        empty.integer("workers", 5, 1, 4),
        "defaults are not range-checked: the code chose them");
    assertEquals(Duration.ofSeconds(1), empty.duration("t", Duration.ofSeconds(1)));
    assertFalse(new ConfigNode(null, "", FILE).isPresent());
    assertFalse(new ConfigNode(NullNode.getInstance(), "", FILE).isPresent());
  }
}

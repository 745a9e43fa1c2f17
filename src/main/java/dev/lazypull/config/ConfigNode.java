package dev.lazypull.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.MissingNode;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * One table of the config file, with typed getters that name the key (as {@code section.key}) and
 * the file in every error. Each consumer declares the keys it knows with {@link #allowOnly};
 * anything else is refused, so a typo never silently falls back to a default.
 */
public final class ConfigNode {
  private final JsonNode node;
  private final String path;
  private final String file;

  public ConfigNode(JsonNode node, String path, String file) {
    this.node = node == null ? MissingNode.getInstance() : node;
    this.path = path;
    this.file = file;
  }

  /** An empty table (no config file, or an absent section). */
  public static ConfigNode empty(String path) {
    return new ConfigNode(MissingNode.getInstance(), path, "(defaults)");
  }

  public boolean isPresent() {
    return !node.isMissingNode() && !node.isNull();
  }

  private String key(String k) {
    return path.isEmpty() ? k : path + "." + k;
  }

  private ConfigException bad(String k, String what) {
    return new ConfigException(file + ": " + key(k) + ": " + what);
  }

  /** Refuses keys other than {@code allowed}. */
  public ConfigNode allowOnly(String... allowed) throws ConfigException {
    if (!isPresent()) {
      return this;
    }
    if (!node.isObject()) {
      throw new ConfigException(
          file + ": " + (path.isEmpty() ? "the file" : path) + " must be a table");
    }
    Set<String> ok = Set.of(allowed);
    for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
      String k = it.next();
      if (!ok.contains(k)) {
        throw new ConfigException(
            file + ": unknown key " + key(k) + " (known: " + String.join(", ", allowed) + ")");
      }
    }
    return this;
  }

  public boolean has(String k) {
    return node.has(k);
  }

  public ConfigNode section(String k) throws ConfigException {
    JsonNode v = node.get(k);
    if (v != null && !v.isObject()) {
      throw bad(k, "must be a table");
    }
    return new ConfigNode(v, key(k), file);
  }

  /** An array of tables ({@code [[k]]}). */
  public List<ConfigNode> sections(String k) throws ConfigException {
    JsonNode v = node.get(k);
    List<ConfigNode> out = new ArrayList<>();
    if (v == null) {
      return out;
    }
    if (!v.isArray()) {
      throw bad(k, "must be an array of tables ([[" + key(k) + "]])");
    }
    int i = 0;
    for (JsonNode e : v) {
      if (!e.isObject()) {
        throw bad(k, "entry " + i + " must be a table");
      }
      out.add(new ConfigNode(e, key(k) + "[" + i++ + "]", file));
    }
    return out;
  }

  public String string(String k, String def) throws ConfigException {
    JsonNode v = node.get(k);
    if (v == null) {
      return def;
    }
    if (!v.isTextual()) {
      throw bad(k, "must be a string");
    }
    return v.asText();
  }

  public boolean bool(String k, boolean def) throws ConfigException {
    JsonNode v = node.get(k);
    if (v == null) {
      return def;
    }
    if (!v.isBoolean()) {
      throw bad(k, "must be true or false");
    }
    return v.asBoolean();
  }

  public long integer(String k, long def, long min, long max) throws ConfigException {
    JsonNode v = node.get(k);
    if (v == null) {
      return def;
    }
    if (!v.isIntegralNumber()) {
      throw bad(k, "must be an integer");
    }
    long n = v.asLong();
    if (n < min || n > max) {
      throw bad(k, n + " is outside [" + min + ", " + max + "]");
    }
    return n;
  }

  /** A size: an integer (bytes) or a string like "1M", "512KiB", "4G". */
  public long size(String k, long def, long min, long max) throws ConfigException {
    JsonNode v = node.get(k);
    if (v == null) {
      return def;
    }
    long n;
    if (v.isIntegralNumber()) {
      n = v.asLong();
    } else if (v.isTextual()) {
      try {
        n = parseSize(v.asText());
      } catch (IllegalArgumentException e) {
        throw bad(k, e.getMessage());
      }
    } else {
      throw bad(k, "must be a size like 1M or a number of bytes");
    }
    if (n < min || n > max) {
      throw bad(k, n + " bytes is outside [" + min + ", " + max + "]");
    }
    return n;
  }

  /** A duration: a string like "30s", "500ms", "2m", or an integer number of seconds. */
  public Duration duration(String k, Duration def) throws ConfigException {
    JsonNode v = node.get(k);
    if (v == null) {
      return def;
    }
    try {
      Duration d =
          v.isIntegralNumber() ? Duration.ofSeconds(v.asLong()) : parseDuration(v.asText());
      if (d.isNegative()) {
        throw new IllegalArgumentException("negative");
      }
      return d;
    } catch (IllegalArgumentException e) {
      throw bad(k, "must be a duration like 30s, 500ms or 2m");
    }
  }

  public List<String> strings(String k) throws ConfigException {
    JsonNode v = node.get(k);
    List<String> out = new ArrayList<>();
    if (v == null) {
      return out;
    }
    if (!v.isArray()) {
      throw bad(k, "must be an array of strings");
    }
    for (JsonNode e : v) {
      if (!e.isTextual()) {
        throw bad(k, "must be an array of strings");
      }
      out.add(e.asText());
    }
    return out;
  }

  public static long parseSize(String text) {
    String s = text.trim().toUpperCase(Locale.ROOT);
    if (s.endsWith("IB")) {
      s = s.substring(0, s.length() - 2);
    } else if (s.endsWith("B")) {
      s = s.substring(0, s.length() - 1);
    }
    long mult = 1;
    if (!s.isEmpty()) {
      switch (s.charAt(s.length() - 1)) {
        case 'K' -> mult = 1L << 10;
        case 'M' -> mult = 1L << 20;
        case 'G' -> mult = 1L << 30;
        case 'T' -> mult = 1L << 40;
        default -> mult = 1;
      }
    }
    if (mult != 1) {
      s = s.substring(0, s.length() - 1);
    }
    try {
      long v = Long.parseLong(s.trim());
      if (v < 0 || v > Long.MAX_VALUE / mult) {
        throw new NumberFormatException();
      }
      return v * mult;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("not a size (e.g. 1M, 512K, 4096): " + text);
    }
  }

  /** A decimal number: digits, at most one fraction (no exponents, NaN or Infinity). */
  private static final Pattern DECIMAL = Pattern.compile("[0-9]+(\\.[0-9]+)?");

  /**
   * {@code 500ms}, {@code 30s}, {@code 1.5s}, {@code 2m}, {@code 1.5m}, {@code 1h}, or a bare
   * number of seconds; whole milliseconds at most.
   */
  public static Duration parseDuration(String text) {
    String s = text.trim().toLowerCase(Locale.ROOT);
    long unitMillis;
    String number;
    if (s.endsWith("ms")) {
      unitMillis = 1;
      number = s.substring(0, s.length() - 2).trim();
    } else if (s.endsWith("s")) {
      unitMillis = 1000;
      number = s.substring(0, s.length() - 1).trim();
    } else if (s.endsWith("m")) {
      unitMillis = 60_000;
      number = s.substring(0, s.length() - 1).trim();
    } else if (s.endsWith("h")) {
      unitMillis = 3_600_000;
      number = s.substring(0, s.length() - 1).trim();
    } else {
      unitMillis = 1000;
      number = s;
    }
    if (!DECIMAL.matcher(number).matches()) {
      throw new IllegalArgumentException("not a duration (e.g. 30s, 500ms, 2m): " + text);
    }
    try {
      BigDecimal millis = new BigDecimal(number).multiply(BigDecimal.valueOf(unitMillis));
      return Duration.ofMillis(millis.setScale(0, RoundingMode.UNNECESSARY).longValueExact());
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException(
          "not a duration in whole milliseconds (or far too long): " + text, e);
    }
  }
}

package dev.lazypull.cli;

import java.time.Duration;
import java.util.Locale;
import picocli.CommandLine;

/** Parses sizes ({@code 1M}, {@code 4MiB}, {@code 65536}) and durations ({@code 30s}, {@code 500ms}, {@code 2m}). */
final class Units {
  private Units() {}

  static long parseSize(String text) {
    String s = text.trim().toUpperCase(Locale.ROOT);
    long mult = 1;
    if (s.endsWith("IB")) {
      s = s.substring(0, s.length() - 2);
    } else if (s.endsWith("B")) {
      s = s.substring(0, s.length() - 1);
    }
    if (s.endsWith("K")) {
      mult = 1L << 10;
    } else if (s.endsWith("M")) {
      mult = 1L << 20;
    } else if (s.endsWith("G")) {
      mult = 1L << 30;
    } else if (s.endsWith("T")) {
      mult = 1L << 40;
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

  static Duration parseDuration(String text) {
    String s = text.trim().toLowerCase(Locale.ROOT);
    try {
      if (s.endsWith("ms")) {
        return Duration.ofMillis(Long.parseLong(s.substring(0, s.length() - 2)));
      }
      if (s.endsWith("s")) {
        return Duration.ofMillis(Math.round(Double.parseDouble(s.substring(0, s.length() - 1)) * 1000));
      }
      if (s.endsWith("m")) {
        return Duration.ofSeconds(Long.parseLong(s.substring(0, s.length() - 1)) * 60);
      }
      return Duration.ofSeconds(Long.parseLong(s));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("not a duration (e.g. 30s, 500ms, 2m): " + text);
    }
  }

  static final class SizeConverter implements CommandLine.ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
      return parseSize(value);
    }
  }

  static final class DurationConverter implements CommandLine.ITypeConverter<Duration> {
    @Override
    public Duration convert(String value) {
      return parseDuration(value);
    }
  }

  static String human(long bytes) {
    if (bytes < 1024) {
      return bytes + " B";
    }
    String[] u = {"KiB", "MiB", "GiB", "TiB"};
    double v = bytes;
    int i = -1;
    while (v >= 1024 && i < u.length - 1) {
      v /= 1024;
      i++;
    }
    return String.format(Locale.ROOT, "%.1f %s", v, u[i]);
  }
}

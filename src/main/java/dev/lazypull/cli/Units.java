package dev.lazypull.cli;

import dev.lazypull.config.ConfigNode;
import java.time.Duration;
import java.util.Locale;
import picocli.CommandLine;

/**
 * Sizes ({@code 1M}, {@code 4MiB}, {@code 65536}) and durations ({@code 30s}, {@code 500ms}, {@code
 * 2m}) on the command line, parsed exactly as in the config file.
 */
final class Units {
  private Units() {}

  static long parseSize(String text) {
    return ConfigNode.parseSize(text);
  }

  static Duration parseDuration(String text) {
    return ConfigNode.parseDuration(text);
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

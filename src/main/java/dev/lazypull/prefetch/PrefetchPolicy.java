package dev.lazypull.prefetch;

import java.util.Locale;

/**
 * What to prefetch when an image's objects open: nothing, everything, or the access profile
 * recorded on an earlier mount (the default: it fetches exactly what the image needed last time,
 * ahead of the reader).
 */
public enum PrefetchPolicy {
  NONE,
  ALL,
  PROFILE;

  public static PrefetchPolicy parse(String s) {
    try {
      return valueOf(s.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "prefetch policy must be none, all or profile: '" + s + "'");
    }
  }

  public String text() {
    return name().toLowerCase(Locale.ROOT);
  }
}

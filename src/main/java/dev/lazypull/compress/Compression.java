package dev.lazypull.compress;

import java.util.Locale;

/**
 * How the chunks of a data blob are stored (docs/format.md): {@link #NONE} raw (chunk digest table
 * version 1), {@link #ZSTD} one independent zstd frame per chunk (table version 2). The code is
 * what a version 2 table records.
 */
public enum Compression {
  NONE("none", 0),
  ZSTD("zstd", 1);

  private final String flag;
  private final int code;

  Compression(String flag, int code) {
    this.flag = flag;
    this.code = code;
  }

  /** The name used by {@code --compression} and in messages. */
  public String flag() {
    return flag;
  }

  /** The algorithm code in a version 2 chunk digest table. */
  public int code() {
    return code;
  }

  /**
   * Parses a {@code --compression} value ("zstd", "none"); anything else is an
   * IllegalArgumentException.
   */
  public static Compression parse(String text) {
    String t = text.trim().toLowerCase(Locale.ROOT);
    for (Compression c : values()) {
      if (c.flag.equals(t)) {
        return c;
      }
    }
    throw new IllegalArgumentException("unknown compression '" + text + "' (zstd or none)");
  }

  /** The algorithm with this table code, or null. */
  public static Compression ofCode(int code) {
    for (Compression c : values()) {
      if (c.code == code) {
        return c;
      }
    }
    return null;
  }

  @Override
  public String toString() {
    return flag;
  }
}

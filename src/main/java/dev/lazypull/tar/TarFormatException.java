package dev.lazypull.tar;

import java.io.IOException;

/**
 * A tar stream that is malformed, truncated, or holds an entry lazypull refuses (escaping paths,
 * sparse files).
 */
public class TarFormatException extends IOException {
  private static final long serialVersionUID = 1L;

  public TarFormatException(String message) {
    super(message);
  }
}

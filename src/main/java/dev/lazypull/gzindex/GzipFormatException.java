package dev.lazypull.gzindex;

import java.io.IOException;

/**
 * A gzip or deflate stream that is malformed, truncated or fails its checks (CRC32, ISIZE), or
 * compressed bytes that do not match the index they are read with. The message names the compressed
 * offset where it was found.
 */
public class GzipFormatException extends IOException {
  private static final long serialVersionUID = 1L;

  public GzipFormatException(String message) {
    super(message);
  }
}

package dev.lazypull.gzindex;

import java.io.IOException;

/**
 * A zinfo file or span table that is malformed, inconsistent with itself, or with the layer it
 * claims to index.
 */
public class IndexFormatException extends IOException {
  private static final long serialVersionUID = 1L;

  public IndexFormatException(String message) {
    super(message);
  }
}

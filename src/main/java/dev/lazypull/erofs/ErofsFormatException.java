package dev.lazypull.erofs;

import java.io.IOException;

/** Bytes that are not a valid EROFS image (or use features lazypull does not handle). */
public final class ErofsFormatException extends IOException {
  private static final long serialVersionUID = 1L;

  public ErofsFormatException(String message) {
    super(message);
  }
}

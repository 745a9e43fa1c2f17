package dev.lazypull.image;

import java.io.IOException;

/** The image exists but is not something lazypull can serve (wrong layer types, bad sizes, …). */
public class InvalidImageException extends IOException {
  private static final long serialVersionUID = 1L;

  public InvalidImageException(String message) {
    super(message);
  }
}

package dev.lazypull.index;

import dev.lazypull.image.InvalidImageException;

/**
 * A side-car index (artifact manifest, device map, zinfo, span table) that is malformed or does not
 * fit its image.
 */
public class InvalidIndexException extends InvalidImageException {
  private static final long serialVersionUID = 1L;

  public InvalidIndexException(String message) {
    super(message);
  }
}

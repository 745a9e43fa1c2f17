package dev.lazypull.compress;

import java.io.IOException;

/**
 * A compressed chunk that does not decode to exactly its declared size: truncated, corrupt,
 * trailing bytes, a frame header that declares another size (or none), or output that would exceed
 * the declared size. An integrity failure of the bytes as fetched, like a digest mismatch.
 */
public final class CorruptFrameException extends IOException {
  private static final long serialVersionUID = 1L;

  public CorruptFrameException(String message) {
    super(message);
  }
}

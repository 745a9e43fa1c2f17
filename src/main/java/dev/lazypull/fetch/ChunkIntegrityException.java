package dev.lazypull.fetch;

import java.io.IOException;

/** Fetched bytes whose sha256 is not the one the image's chunk digest table records. */
public final class ChunkIntegrityException extends IOException {
  private static final long serialVersionUID = 1L;
  private final boolean fromMirror;

  public ChunkIntegrityException(String message, boolean fromMirror) {
    super(message);
    this.fromMirror = fromMirror;
  }

  public boolean fromMirror() {
    return fromMirror;
  }
}

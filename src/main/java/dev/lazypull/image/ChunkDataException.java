package dev.lazypull.image;

import java.io.IOException;

/**
 * The stored bytes of one chunk digest table entry, as fetched, are not that chunk: a compressed
 * frame that does not decode to exactly the entry's length, or bytes whose sha256 differs from the
 * table's. An integrity failure (EIO to a kernel reader; worth one refetch from the origin when a
 * mirror served the bytes).
 */
public final class ChunkDataException extends IOException {
  private static final long serialVersionUID = 1L;
  private final int entry;

  public ChunkDataException(int entry, String message) {
    super(message);
    this.entry = entry;
  }

  /** The table entry whose bytes failed. */
  public int entry() {
    return entry;
  }
}

package dev.lazypull.cache;

import java.io.IOException;
import java.nio.ByteBuffer;

/** Where fetched chunk bytes go: a cachefiles anon fd, or a local sparse cache file (NBD). */
public interface ChunkWriter {
  /**
   * Writes all of {@code buf}'s remaining bytes at {@code offset}. Offset, length and buffer address are
   * 4096-aligned (the tail is zero-padded by the caller).
   */
  void write(ByteBuffer buf, long offset) throws IOException;
}

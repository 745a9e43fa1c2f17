package dev.lazypull.fetch;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Where one blob's fetched bytes go: a cachefiles anon fd (the kernel's own cache file), or a host
 * cache file shared by every lazypull process ({@link BlobCacheFile}). The sink also says what it
 * already holds — the file is the record of what is cached ({@link ChunkMap#rebuild}) — and, when
 * other processes write the same file, offers claims on the ranges being fetched.
 */
public interface ChunkSink extends ChunkMap.ExtentProbe {
  /**
   * Writes all of {@code buf}'s remaining bytes at {@code offset}. Offset, length and buffer
   * address are 4096-aligned (the tail is zero-padded by the caller).
   */
  void write(ByteBuffer buf, long offset) throws IOException;

  /** False once the sink is closed (its user went away): then nothing more is written or probed. */
  boolean isOpen();

  /**
   * Claims on ranges of a sink other processes also fill; null when this process is its only
   * writer.
   */
  default RangeClaims claims() {
    return null;
  }
}

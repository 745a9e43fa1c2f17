package dev.lazypull.daemon;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Settings of the on-demand daemon.
 *
 * @param cacheTag fscache cache tag written with {@code tag}
 * @param fetchThreads fetch threads per origin — each registry, and local layouts (and the registry connection pool)
 * @param chunkSize fetch unit, a power of two ≥ 4096
 * @param mergeLimit most bytes one ranged read may cover when adjacent missing chunks are merged
 * @param readDeadline after this long a READ is answered without data (the reader gets EIO)
 * @param maxOutstandingReads READs in progress before the poll thread stops taking more from the kernel
 * @param bufferSize per-fetch-thread aligned buffer
 * @param readAhead largest sequential read-ahead window per blob, 0 to disable
 */
public record DaemonConfig(
    Path cacheDir,
    Path stateDir,
    String cacheTag,
    int fetchThreads,
    int chunkSize,
    int mergeLimit,
    Duration readDeadline,
    int maxOutstandingReads,
    int bufferSize,
    long readAhead) {

  public static final int DEFAULT_CHUNK_SIZE = 1 << 20;
  public static final long DEFAULT_READ_AHEAD = 64L << 20;

  public DaemonConfig {
    if (fetchThreads < 1 || fetchThreads > 1024) {
      throw new IllegalArgumentException("fetch threads must be in [1, 1024]: " + fetchThreads);
    }
    if (chunkSize < 4096 || Integer.bitCount(chunkSize) != 1 || chunkSize > (64 << 20)) {
      throw new IllegalArgumentException("chunk size must be a power of two in [4 KiB, 64 MiB]: " + chunkSize);
    }
    if (mergeLimit < chunkSize || mergeLimit > (256 << 20)) {
      throw new IllegalArgumentException("merge limit must be in [chunk size, 256 MiB]: " + mergeLimit);
    }
    if (readDeadline.isNegative() || readDeadline.isZero()) {
      throw new IllegalArgumentException("read deadline must be positive: " + readDeadline);
    }
    if (maxOutstandingReads < 1) {
      throw new IllegalArgumentException("max outstanding reads must be >= 1");
    }
    if (bufferSize < 4096 || bufferSize % 4096 != 0 || bufferSize > (64 << 20)) {
      throw new IllegalArgumentException("buffer size must be a multiple of 4096 up to 64 MiB: " + bufferSize);
    }
    if (readAhead < 0 || readAhead > (1L << 30)) {
      throw new IllegalArgumentException("read-ahead must be in [0, 1 GiB]: " + readAhead);
    }
  }

  /** Without a read-ahead setting: the default window. */
  public DaemonConfig(Path cacheDir, Path stateDir, String cacheTag, int fetchThreads, int chunkSize, int mergeLimit,
      Duration readDeadline, int maxOutstandingReads, int bufferSize) {
    this(cacheDir, stateDir, cacheTag, fetchThreads, chunkSize, mergeLimit, readDeadline, maxOutstandingReads,
        bufferSize, DEFAULT_READ_AHEAD);
  }

  public static DaemonConfig defaults(Path cacheDir, Path stateDir) {
    return new DaemonConfig(cacheDir, stateDir, "lazypull", 16, DEFAULT_CHUNK_SIZE, 4 << 20,
        Duration.ofSeconds(30), 1024, 1 << 20);
  }

  public DaemonConfig withReadDeadline(Duration d) {
    return new DaemonConfig(cacheDir, stateDir, cacheTag, fetchThreads, chunkSize, mergeLimit, d,
        maxOutstandingReads, bufferSize, readAhead);
  }
}

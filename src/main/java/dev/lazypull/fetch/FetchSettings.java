package dev.lazypull.fetch;

import java.time.Duration;

/**
 * How the fetch core fetches, for every front end; the defaults live here and nowhere else.
 *
 * @param threadsPerOrigin fetch threads per origin (each registry, and local layouts) and the
 *     registry client's connection pool
 * @param chunkSize fetch unit of blobs without a digest table, a power of two in [4 KiB, 64 MiB]
 * @param mergeLimit most bytes one ranged read covers when adjacent missing chunks are merged
 * @param readAhead largest sequential read-ahead window per blob, 0 to disable
 * @param readTimeout a kernel request (READ, event, NBD read) not served within this fails with EIO
 * @param bufferSize each fetch thread's aligned buffer, a multiple of 4096
 */
public record FetchSettings(
    int threadsPerOrigin,
    int chunkSize,
    int mergeLimit,
    long readAhead,
    Duration readTimeout,
    int bufferSize) {
  public static final int DEFAULT_THREADS = 16;
  public static final int DEFAULT_CHUNK_SIZE = 1 << 20;
  public static final int DEFAULT_MERGE_LIMIT = 4 << 20;
  public static final long DEFAULT_READ_AHEAD = 64L << 20;
  public static final Duration DEFAULT_READ_TIMEOUT = Duration.ofSeconds(30);
  public static final int DEFAULT_BUFFER_SIZE = 1 << 20;

  /**
   * Largest single ranged read issued for read-ahead (fewer, larger reads for a sequential stream).
   */
  public static final long MAX_READ_AHEAD_MERGE = 32L << 20;

  public FetchSettings {
    if (threadsPerOrigin < 1 || threadsPerOrigin > 1024) {
      throw new IllegalArgumentException("fetch threads must be in [1, 1024]: " + threadsPerOrigin);
    }
    if (chunkSize < 4096 || Integer.bitCount(chunkSize) != 1 || chunkSize > (64 << 20)) {
      throw new IllegalArgumentException(
          "chunk size must be a power of two in [4 KiB, 64 MiB]: " + chunkSize);
    }
    if (mergeLimit < chunkSize || mergeLimit > (256 << 20)) {
      throw new IllegalArgumentException(
          "merge limit must be in [chunk size, 256 MiB]: " + mergeLimit);
    }
    if (readAhead < 0 || readAhead > (1L << 30)) {
      throw new IllegalArgumentException("read-ahead must be in [0, 1 GiB]: " + readAhead);
    }
    if (readTimeout == null || readTimeout.isNegative() || readTimeout.isZero()) {
      throw new IllegalArgumentException("read timeout must be positive: " + readTimeout);
    }
    if (bufferSize < 4096 || bufferSize % 4096 != 0 || bufferSize > (64 << 20)) {
      throw new IllegalArgumentException(
          "buffer size must be a multiple of 4096 up to 64 MiB: " + bufferSize);
    }
  }

  public static FetchSettings defaults() {
    return new FetchSettings(
        DEFAULT_THREADS,
        DEFAULT_CHUNK_SIZE,
        DEFAULT_MERGE_LIMIT,
        DEFAULT_READ_AHEAD,
        DEFAULT_READ_TIMEOUT,
        DEFAULT_BUFFER_SIZE);
  }

  public FetchSettings withThreads(int n) {
    return new FetchSettings(n, chunkSize, mergeLimit, readAhead, readTimeout, bufferSize);
  }

  /** A new fetch unit; the merge limit and buffer grow with it where they would be smaller. */
  public FetchSettings withChunkSize(int n) {
    return new FetchSettings(
        threadsPerOrigin,
        n,
        Math.max(mergeLimit, n),
        readAhead,
        readTimeout,
        Math.max(bufferSize, n));
  }

  public FetchSettings withMergeLimit(int n) {
    return new FetchSettings(threadsPerOrigin, chunkSize, n, readAhead, readTimeout, bufferSize);
  }

  public FetchSettings withReadAhead(long n) {
    return new FetchSettings(threadsPerOrigin, chunkSize, mergeLimit, n, readTimeout, bufferSize);
  }

  public FetchSettings withReadTimeout(Duration d) {
    return new FetchSettings(threadsPerOrigin, chunkSize, mergeLimit, readAhead, d, bufferSize);
  }

  public FetchSettings withBufferSize(int n) {
    return new FetchSettings(threadsPerOrigin, chunkSize, mergeLimit, readAhead, readTimeout, n);
  }
}

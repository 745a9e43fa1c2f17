package dev.lazypull.cache;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.Descriptor;
import dev.lazypull.sys.AlignedBuffers;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.Supplier;

/**
 * The fetch core for one blob's cache file: makes byte ranges present by fetching the missing chunks from a
 * {@link BlobSource} and writing them through a {@link ChunkWriter}.
 *
 * <p>{@link #ensure} never blocks and does no I/O — it only looks at the chunk map and queues fetches — so the
 * devnode poll thread may call it. Concurrent misses of the same chunk share one fetch; adjacent missing
 * chunks of one request are merged into one ranged read of at most {@code mergeLimit} bytes. Fetched bytes
 * are streamed through a 4096-aligned direct buffer per fetch thread and written whole-block, zero-padded at
 * the blob's end, so a chunk is marked ready only when all its bytes are on disk.
 */
public final class ChunkFetcher {
  private final Descriptor blob;
  private final BlobSource source;
  private final ChunkWriter writer;
  private final ChunkMap map;
  private final Executor executor;
  private final int mergeLimit;
  private final FetchStats stats;
  private final Supplier<ByteBuffer> buffers;
  private final Map<Integer, CompletableFuture<Void>> inflight = new HashMap<>();

  /**
   * @param buffers gives the calling fetch thread its aligned scratch buffer (capacity a multiple of 4096)
   */
  public ChunkFetcher(Descriptor blob, BlobSource source, ChunkWriter writer, ChunkMap map, Executor executor,
      int mergeLimit, FetchStats stats, Supplier<ByteBuffer> buffers) {
    this.blob = blob;
    this.source = source;
    this.writer = writer;
    this.map = map;
    this.executor = executor;
    this.mergeLimit = Math.max(mergeLimit, map.chunkSize());
    this.stats = stats;
    this.buffers = buffers;
  }

  public ChunkMap map() {
    return map;
  }

  public Descriptor blob() {
    return blob;
  }

  /**
   * Returns a future that completes when every chunk overlapping {@code [offset, offset+length)} — clamped to
   * the cache file's padded size — is present, or fails with the fetch error. Ranges entirely past the end
   * complete at once (there is nothing to fetch; the kernel then finds a hole and reports EIO).
   */
  public CompletableFuture<Void> ensure(long offset, long length) {
    return ensure(offset, length, mergeLimit);
  }

  /**
   * {@link #ensure(long, long)} with adjacent missing chunks merged into ranged reads of up to {@code merge}
   * bytes (read-ahead asks for larger, fewer reads than a blocked reader's READ).
   */
  public CompletableFuture<Void> ensure(long offset, long length, long merge) {
    long end = Math.min(offset + length, map.paddedSize());
    if (offset < 0 || length <= 0 || offset >= end) {
      return CompletableFuture.completedFuture(null);
    }
    long limit = Math.max(merge, map.chunkSize());
    int first = map.chunkOf(offset);
    int last = map.chunkOf(end - 1);
    List<CompletableFuture<Void>> waits = new ArrayList<>();
    List<int[]> runs = new ArrayList<>();
    synchronized (inflight) {
      int runStart = -1;
      int runEnd = -1;
      for (int c = first; c <= last; c++) {
        if (map.isReady(c)) {
          continue;
        }
        CompletableFuture<Void> f = inflight.get(c);
        if (f != null) {
          stats.chunksDeduplicated.increment();
          waits.add(f);
          continue;
        }
        f = new CompletableFuture<>();
        inflight.put(c, f);
        waits.add(f);
        if (runStart >= 0 && c == runEnd + 1 && map.chunkStart(c + 1) - map.chunkStart(runStart) <= limit) {
          runEnd = c;
        } else {
          if (runStart >= 0) {
            runs.add(new int[] {runStart, runEnd});
          }
          runStart = runEnd = c;
        }
      }
      if (runStart >= 0) {
        runs.add(new int[] {runStart, runEnd});
      }
    }
    for (int[] run : runs) {
      try {
        executor.execute(() -> fetchRun(run[0], run[1]));
      } catch (RejectedExecutionException e) {
        failRun(run[0], run[1], new IOException("fetch pool is shut down", e));
      }
    }
    if (waits.isEmpty()) {
      return CompletableFuture.completedFuture(null);
    }
    if (waits.size() == 1) {
      return waits.get(0).thenApply(v -> null); // a private copy: callers may time it out independently
    }
    return CompletableFuture.allOf(waits.toArray(new CompletableFuture<?>[0]));
  }

  /** Fetches chunks [first, last] with one ranged read and writes them in aligned pieces. */
  private void fetchRun(int first, int last) {
    long start = map.chunkStart(first);
    long end = map.chunkDataEnd(last);
    int next = first;
    stats.fetches.increment();
    try (ReadableByteChannel in = source.openRange(blob, start, end - start)) {
      ByteBuffer buf = buffers.get();
      long pos = start;
      while (pos < end) {
        int n = (int) Math.min(buf.capacity(), end - pos);
        buf.clear().limit(n);
        while (buf.hasRemaining()) {
          if (in.read(buf) < 0) {
            throw new IOException(source.describe() + ": blob " + blob.digest() + " ended at " + (pos + buf.position()));
          }
        }
        stats.bytesFetched.add(n);
        int padded = (int) AlignedBuffers.roundUp(n, AlignedBuffers.ALIGNMENT);
        buf.limit(padded);
        while (buf.hasRemaining()) {
          buf.put((byte) 0);
        }
        buf.flip();
        writer.write(buf, pos);
        stats.bytesWritten.add(padded);
        pos += n;
        while (next <= last && map.chunkDataEnd(next) <= pos) {
          complete(next++);
        }
      }
    } catch (Throwable e) {
      stats.fetchFailures.increment();
      failRun(next, last, e);
    }
  }

  private void complete(int chunk) {
    CompletableFuture<Void> f;
    synchronized (inflight) { // ready and no longer in flight at once, as ensure() sees them
      map.markReady(chunk);
      f = inflight.remove(chunk);
    }
    if (f != null) {
      f.complete(null);
    }
  }

  private void failRun(int first, int last, Throwable error) {
    for (int c = first; c <= last; c++) {
      CompletableFuture<Void> f;
      synchronized (inflight) {
        f = inflight.remove(c);
      }
      if (f != null) {
        f.completeExceptionally(error);
      }
    }
  }

  /** Chunks being fetched right now. */
  public int inflightCount() {
    synchronized (inflight) {
      return inflight.size();
    }
  }
}

package dev.lazypull.cache;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.ChunkDigestTable;
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
import java.util.logging.Logger;

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
  private static final Logger LOG = Logger.getLogger(ChunkFetcher.class.getName());
  private final Descriptor blob;
  private final BlobSource source;
  private final ChunkWriter writer;
  private final ChunkMap map;
  private final Executor executor;
  private final int mergeLimit;
  private final FetchStats stats;
  private final Supplier<ByteBuffer> buffers;
  private final Map<Integer, CompletableFuture<Void>> inflight = new HashMap<>();
  /** The blob's chunk digest table when the image has one: then every fetched chunk is verified first. */
  private volatile ChunkDigestTable table;
  /** Larger digest-table entries are refused rather than buffered. */
  static final int MAX_VERIFIED_ENTRY = 64 << 20;

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

  /**
   * Turns on verification: from now on fetched bytes are checked against {@code table} (whole entries, before
   * they are written). Set before the first fetch; the table was decoded against this blob's size.
   */
  public void verifyWith(ChunkDigestTable table) {
    this.table = table;
  }

  public boolean verifying() {
    return table != null;
  }

  public BlobSource source() {
    return source;
  }

  public FetchStats stats() {
    return stats;
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
    return ensure(offset, length, mergeLimit, executor);
  }

  /**
   * {@link #ensure(long, long)} with the fetches that are not already in flight run on {@code runOn}: prefetch
   * uses its own small pool so it never queues ahead of on-demand READs in the shared fetch pool.
   */
  public CompletableFuture<Void> ensure(long offset, long length, Executor runOn) {
    return ensure(offset, length, mergeLimit, runOn);
  }

  /**
   * {@link #ensure(long, long)} with adjacent missing chunks merged into ranged reads of up to {@code merge}
   * bytes (read-ahead asks for larger, fewer reads than a blocked reader's READ).
   */
  public CompletableFuture<Void> ensure(long offset, long length, long merge) {
    return ensure(offset, length, merge, executor);
  }

  private CompletableFuture<Void> ensure(long offset, long length, long merge, Executor runOn) {
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
        runOn.execute(() -> fetchRun(run[0], run[1]));
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
    long t0 = System.nanoTime();
    stats.fetches.increment();
    int[] next = {first};
    try {
      ChunkDigestTable t = table;
      if (t == null) {
        try (ReadableByteChannel in = source.openRange(blob, map.chunkStart(first), map.chunkDataEnd(last)
            - map.chunkStart(first))) {
          stream(in, map.chunkStart(first), map.chunkDataEnd(last), last, next);
        }
      } else {
        fetchVerified(t, last, next);
      }
      stats.fetchLatency.observeNanos(System.nanoTime() - t0);
    } catch (Throwable e) {
      stats.fetchFailures.increment();
      failRun(next[0], last, e);
    }
  }

  /** Streams [start, end) from {@code in} through the thread's buffer, completing chunks as they land. */
  private void stream(ReadableByteChannel in, long start, long end, int last, int[] next) throws IOException {
    ByteBuffer buf = buffers.get();
    long pos = start;
    while (pos < end) {
      int n = (int) Math.min(buf.capacity(), end - pos);
      buf.clear().limit(n);
      readFully(in, buf, pos);
      stats.bytesFetched.add(n);
      writePadded(buf, n, pos);
      pos += n;
      completeUpTo(pos, last, next);
    }
  }

  /**
   * The verified path: widens the run to whole digest-table entries, reads each entry, checks its sha256, and
   * only then writes it. A mismatch in bytes from a mirror is fetched once more from the origin; from the
   * origin it fails the run (the READ gets EIO) with an error naming the blob and the range.
   */
  private void fetchVerified(ChunkDigestTable t, int last, int[] next) throws IOException {
    long start = map.chunkStart(next[0]);
    long end = map.chunkDataEnd(last);
    int e0 = t.entryAt(start);
    int e1 = t.entryAt(end - 1);
    if (e0 < 0 || e1 < 0) {
      throw new IOException("blob " + blob.digest() + ": range " + start + ".." + end + " outside its digest table");
    }
    long ws = t.offset(e0);
    long we = t.offset(e1) + t.length(e1);
    try (ReadableByteChannel in = source.openRange(blob, ws, we - ws)) {
      streamVerified(t, in, e0, e1, last, next);
    } catch (ChunkIntegrityException x) {
      if (!x.fromMirror()) {
        stats.integrityMismatchesOrigin.increment();
        throw x;
      }
      stats.integrityMismatchesMirror.increment();
      LOG.warning(x.getMessage() + "; fetching it again from the origin");
      try (ReadableByteChannel in = source.openRangeFromOrigin(blob, ws, we - ws)) {
        streamVerified(t, in, e0, e1, last, next);
      } catch (ChunkIntegrityException again) {
        stats.integrityMismatchesOrigin.increment();
        throw again;
      }
    }
  }

  private void streamVerified(ChunkDigestTable t, ReadableByteChannel in, int e0, int e1, int last, int[] next)
      throws IOException {
    boolean mirror = in instanceof BlobSource.Served s && s.fromMirror();
    String servedBy = in instanceof BlobSource.Served s ? s.servedBy() : source.describe();
    for (int e = e0; e <= e1; e++) {
      int len = t.length(e);
      if (len > MAX_VERIFIED_ENTRY) {
        throw new IOException("blob " + blob.digest() + ": digest-table entry " + e + " of " + len + " bytes exceeds "
            + MAX_VERIFIED_ENTRY);
      }
      ByteBuffer buf = buffers.get();
      if (buf.capacity() < len) {
        buf = AlignedBuffers.allocate(len);
      }
      buf.clear().limit(len);
      readFully(in, buf, t.offset(e));
      stats.bytesFetched.add(len);
      buf.flip();
      if (!t.verify(e, buf)) {
        LOG.severe("integrity: blob " + blob.digest() + " bytes " + t.offset(e) + "+" + len + " from " + servedBy
            + " do not match their sha256 " + java.util.HexFormat.of().formatHex(t.sha256(e)));
        throw new ChunkIntegrityException("blob " + blob.digest() + ": bytes " + t.offset(e) + "+" + len + " from "
            + servedBy + " fail their chunk digest", mirror);
      }
      stats.chunksVerified.increment();
      writePadded(buf, len, t.offset(e));
      completeUpTo(t.offset(e) + len, last, next);
    }
  }

  private void readFully(ReadableByteChannel in, ByteBuffer buf, long pos) throws IOException {
    while (buf.hasRemaining()) {
      if (in.read(buf) < 0) {
        throw new IOException(source.describe() + ": blob " + blob.digest() + " ended at " + (pos + buf.position()));
      }
    }
  }

  /** Writes the first {@code n} bytes of {@code buf} at {@code pos}, zero-padded to a whole block. */
  private void writePadded(ByteBuffer buf, int n, long pos) throws IOException {
    int padded = (int) AlignedBuffers.roundUp(n, AlignedBuffers.ALIGNMENT);
    buf.limit(padded).position(n);
    while (buf.hasRemaining()) {
      buf.put((byte) 0);
    }
    buf.flip();
    writer.write(buf, pos);
    stats.bytesWritten.add(padded);
  }

  /** Completes every requested chunk whose bytes all lie below {@code pos}. */
  private void completeUpTo(long pos, int last, int[] next) {
    while (next[0] <= last && map.chunkDataEnd(next[0]) <= pos) {
      complete(next[0]++);
    }
  }

  /**
   * Writes every chunk that is neither present nor being fetched from {@code verified}, a local copy of the whole
   * blob whose sha256 the caller has checked (full prefetch of a blob without a digest table). Returns the bytes
   * written.
   */
  public long fillFrom(java.nio.channels.FileChannel verified) throws IOException {
    if (verified.size() != blob.size()) {
      throw new IOException("verified copy of " + blob.digest() + " has " + verified.size() + " bytes, expected "
          + blob.size());
    }
    long written = 0;
    ByteBuffer buf = buffers.get();
    for (int c = 0; c < map.chunkCount(); c++) {
      synchronized (inflight) {
        if (map.isReady(c) || inflight.containsKey(c)) {
          continue;
        }
        inflight.put(c, new CompletableFuture<>());
      }
      try {
        long pos = map.chunkStart(c);
        long end = map.chunkDataEnd(c);
        while (pos < end) {
          int n = (int) Math.min(buf.capacity(), end - pos);
          buf.clear().limit(n);
          while (buf.hasRemaining()) {
            if (verified.read(buf, pos + buf.position()) < 0) {
              throw new IOException("verified copy of " + blob.digest() + " ended at " + (pos + buf.position()));
            }
          }
          writePadded(buf, n, pos);
          written += n;
          pos += n;
        }
        complete(c);
      } catch (IOException | RuntimeException e) {
        failRun(c, c, e);
        throw e;
      }
    }
    return written;
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

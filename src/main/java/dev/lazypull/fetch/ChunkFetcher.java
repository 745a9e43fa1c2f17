package dev.lazypull.fetch;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.ChunkDataException;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.sys.AlignedBuffers;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * The fetch core for one blob: makes byte ranges of its cache file present by fetching the missing
 * chunks from a {@link BlobSource} and writing them into a {@link ChunkSink}. Built once, complete,
 * by {@link FetchCore#open}: its chunk map and its verification (a digest table, or none) never
 * change.
 *
 * <p>{@link #ensure} never blocks and does no I/O — it only looks at the chunk map and queues
 * fetches — so a front end's event thread may call it. Concurrent misses of the same chunk share
 * one fetch; adjacent missing chunks of one request are merged into one ranged read of at most the
 * merge limit. Fetched bytes are streamed through a 4096-aligned direct buffer per fetch thread and
 * written whole-block, zero-padded at the blob's end, so a chunk is marked ready only when all its
 * bytes are in the sink. With a digest table each chunk is one table entry and is checked before a
 * byte of it is written.
 *
 * <p>When other processes fill the same file ({@link ChunkSink#claims}), a run is fetched only
 * under a claim and after looking whether the file holds it already, so each chunk is fetched once
 * on the host.
 */
public final class ChunkFetcher {
  private static final Logger LOG = Logger.getLogger(ChunkFetcher.class.getName());

  /** Larger digest-table entries are refused rather than buffered. */
  static final int MAX_VERIFIED_ENTRY = 64 << 20;

  private final Descriptor blob;
  private final ChunkDigestTable table;
  private final BlobSource source;
  private final ChunkSink sink;
  private final ChunkMap map;
  private final Executor executor;
  private final int mergeLimit;
  private final FetchStats stats;
  private final Supplier<ByteBuffer> buffers;
  private final ReadAhead readAhead;
  private final Map<Integer, CompletableFuture<Void>> inflight = new HashMap<>();

  /**
   * @param table the blob's digest table (the map is cut along it), or null to fetch unverified
   * @param buffers gives the calling fetch thread its aligned scratch buffer (capacity a multiple
   *     of 4096)
   */
  ChunkFetcher(
      Descriptor blob,
      ChunkDigestTable table,
      BlobSource source,
      ChunkSink sink,
      ChunkMap map,
      Executor executor,
      FetchSettings settings,
      FetchStats stats,
      Supplier<ByteBuffer> buffers) {
    this.blob = blob;
    this.table = table;
    this.source = source;
    this.sink = sink;
    this.map = map;
    this.executor = executor;
    this.mergeLimit = Math.max(settings.mergeLimit(), map.chunkSize());
    this.stats = stats;
    this.buffers = buffers;
    this.readAhead = new ReadAhead(map, settings.readAhead());
  }

  public ChunkMap map() {
    return map;
  }

  public boolean verifying() {
    return table != null;
  }

  /**
   * The digest table every fetch is checked against, or null when the blob is fetched unverified.
   */
  public ChunkDigestTable table() {
    return table;
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
   * Returns a future that completes when every chunk overlapping {@code [offset, offset+length)} —
   * clamped to the cache file's padded size — is present, or fails with the fetch error. Ranges
   * entirely past the end complete at once (there is nothing to fetch).
   */
  public CompletableFuture<Void> ensure(long offset, long length) {
    return ensure(offset, length, mergeLimit, executor);
  }

  /**
   * {@link #ensure(long, long)} with the fetches that are not already in flight run on {@code
   * runOn}: prefetch uses its own small pool so it never queues ahead of on-demand reads in the
   * fetch pool.
   */
  public CompletableFuture<Void> ensure(long offset, long length, Executor runOn) {
    return ensure(offset, length, mergeLimit, runOn);
  }

  /**
   * Whether every chunk overlapping {@code [offset, offset+length)} (clamped to the file) is
   * present.
   */
  public boolean isPresent(long offset, long length) {
    long end = Math.min(offset + length, map.paddedSize());
    if (length <= 0 || offset >= end) {
      return true;
    }
    if (offset < 0) {
      return false;
    }
    for (int c = map.chunkOf(offset), last = map.chunkOf(end - 1); c <= last; c++) {
      if (!map.isReady(c)) {
        return false;
      }
    }
    return true;
  }

  /**
   * Sequential read-ahead (see {@link ReadAhead}): records a kernel request for {@code [offset,
   * offset+length)} and queues the chunks ahead of a sequential reader, in fewer, larger ranged
   * reads than a blocked request's. Never waits; failures are dropped (the reader's own request,
   * when it comes, fetches the range again and reports the error).
   *
   * @return the range queued ahead of the reader, or null
   */
  public ReadAhead.Range readAhead(long offset, long length) {
    ReadAhead.Range ahead = readAhead.onRead(offset, length);
    if (ahead != null) {
      // per-request cost (TTFB, registry overhead) is what limits a sequential stream; two streams
      // per
      // extension keep some parallelism
      long merge =
          Math.max(mergeLimit, Math.min(FetchSettings.MAX_READ_AHEAD_MERGE, ahead.length() / 2));
      ensure(ahead.offset(), ahead.length(), merge, executor).exceptionally(e -> null);
    }
    return ahead;
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
        if (runStart >= 0
            && c == runEnd + 1
            && map.chunkStart(c + 1) - map.chunkStart(runStart) <= limit) {
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
      return waits
          .get(0)
          .thenApply(v -> null); // a private copy: callers may time it out independently
    }
    return CompletableFuture.allOf(waits.toArray(new CompletableFuture<?>[0]));
  }

  /**
   * Fetches chunks [first, last] — under a claim when other processes share the sink — and writes
   * them.
   */
  private void fetchRun(int first, int last) {
    try {
      RangeClaims claims = sink.claims();
      if (claims == null) {
        fetch(first, last);
        return;
      }
      long start = map.chunkStart(first);
      long length = map.chunkFileEnd(last) - start;
      if (claims.tryClaim(start, length)) {
        try {
          fetchAbsent(first, last);
        } finally {
          claims.release(start, length);
        }
        return;
      }
      // Another process is fetching part of the run: chunk by chunk, each under its own claim,
      // waiting at most
      // for that process's fetch of it — and never holding a claim while waiting for another.
      for (int c = first; c <= last; c++) {
        long s = map.chunkStart(c);
        long n = map.chunkFileEnd(c) - s;
        claims.claim(s, n);
        try {
          fetchAbsent(c, c);
        } finally {
          claims.release(s, n);
        }
      }
    } catch (Throwable e) {
      failRun(first, last, e);
    }
  }

  /**
   * Under a claim: completes the chunks another process has written meanwhile and fetches the rest.
   */
  private void fetchAbsent(int first, int last) throws IOException {
    int runStart = -1;
    for (int c = first; c <= last; c++) {
      if (inFile(c)) {
        if (runStart >= 0) {
          fetch(runStart, c - 1);
          runStart = -1;
        }
        complete(c);
      } else if (runStart < 0) {
        runStart = c;
      }
    }
    if (runStart >= 0) {
      fetch(runStart, last);
    }
  }

  /**
   * Whether the sink holds every block of chunk {@code c} (bytes are only ever written whole and
   * final).
   */
  private boolean inFile(int c) throws IOException {
    long start = map.chunkStart(c);
    if (sink.seekData(start) != start) {
      return false;
    }
    long hole = sink.seekHole(start);
    return hole < 0 || hole >= map.chunkFileEnd(c);
  }

  /** Fetches chunks [first, last] with one ranged read; a failure fails those not yet written. */
  private void fetch(int first, int last) throws IOException {
    long t0 = System.nanoTime();
    stats.fetches.increment();
    int[] next = {first};
    try {
      if (table == null) {
        long start = map.chunkStart(first);
        long end = map.chunkDataEnd(last);
        try (ReadableByteChannel in = source.openRange(blob, start, end - start)) {
          stream(in, start, end, last, next);
        }
      } else {
        fetchVerified(last, next);
      }
      stats.fetchLatency.observeNanos(System.nanoTime() - t0);
    } catch (IOException | RuntimeException e) {
      stats.fetchFailures.increment();
      throw e;
    }
  }

  /**
   * Streams [start, end) from {@code in} through the thread's buffer, completing chunks as they
   * land.
   */
  private void stream(ReadableByteChannel in, long start, long end, int last, int[] next)
      throws IOException {
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
   * The verified path: reads each digest-table entry's stored bytes (the map is cut along the
   * table, so the run is whole entries; compressed entries are adjacent frames, so the run is still
   * one ranged read), turns them into the entry's bytes — decompressed, never past its length —
   * checks their sha256, and only then writes them. A failure in bytes from a mirror is fetched
   * once more from the origin; from the origin it fails the run with an error naming the blob and
   * the range.
   */
  private void fetchVerified(int last, int[] next) throws IOException {
    int e0 = next[0];
    long ws = table.compressedOffset(e0);
    long we = table.compressedEnd(last);
    try (ReadableByteChannel in = source.openRange(blob, ws, we - ws)) {
      streamVerified(in, e0, last, next);
    } catch (ChunkIntegrityException x) {
      if (!x.fromMirror()) {
        stats.integrityMismatchesOrigin.increment();
        throw x;
      }
      stats.integrityMismatchesMirror.increment();
      LOG.warning(x.getMessage() + "; fetching it again from the origin");
      long from = table.compressedOffset(next[0]);
      try (ReadableByteChannel in = source.openRangeFromOrigin(blob, from, we - from)) {
        streamVerified(in, next[0], last, next);
      } catch (ChunkIntegrityException again) {
        stats.integrityMismatchesOrigin.increment();
        throw again;
      }
    }
  }

  private void streamVerified(ReadableByteChannel in, int e0, int e1, int[] next)
      throws IOException {
    boolean mirror = in instanceof BlobSource.Served s && s.fromMirror();
    String servedBy = in instanceof BlobSource.Served s ? s.servedBy() : source.describe();
    for (int e = e0; e <= e1; e++) {
      int len = table.length(e);
      int stored = table.compressedLength(e);
      if (len > MAX_VERIFIED_ENTRY || stored > MAX_VERIFIED_ENTRY) {
        throw new IOException(
            "blob "
                + blob.digest()
                + ": digest-table entry "
                + e
                + " of "
                + len
                + " bytes exceeds "
                + MAX_VERIFIED_ENTRY);
      }
      ByteBuffer buf = buffers.get();
      if (buf.capacity() < len) {
        buf = AlignedBuffers.allocate(len);
      }
      buf.clear().limit(len);
      try {
        if (table.isCompressed()) { // the frame into scratch, its bytes into the aligned buffer
          ByteBuffer frame = frameBuffer(stored);
          readFully(in, frame, table.compressedOffset(e));
          stats.bytesFetched.add(stored);
          table.unpack(e, frame.flip(), buf);
          stats.bytesDecompressed.add(len);
        } else {
          readFully(in, buf, table.offset(e));
          stats.bytesFetched.add(len);
          buf.flip();
          if (!table.verify(e, buf)) {
            throw new ChunkDataException(e, "sha256 mismatch");
          }
        }
      } catch (ChunkDataException bad) {
        LOG.severe(
            "integrity: blob "
                + blob.digest()
                + " bytes "
                + table.offset(e)
                + "+"
                + len
                + " from "
                + servedBy
                + " do not match their sha256 "
                + HexFormat.of().formatHex(table.sha256(e))
                + " ("
                + bad.getMessage()
                + ")");
        throw new ChunkIntegrityException(
            "blob "
                + blob.digest()
                + ": bytes "
                + table.offset(e)
                + "+"
                + len
                + " from "
                + servedBy
                + " fail their chunk digest",
            mirror);
      }
      stats.chunksVerified.increment();
      buf.position(0).limit(len);
      writePadded(buf, len, table.offset(e));
      completeUpTo(table.offset(e) + len, e1, next);
    }
  }

  /**
   * Compressed frames of this thread, read whole before they are decompressed; grows to the largest
   * frame.
   */
  private static final ThreadLocal<ByteBuffer> FRAMES =
      ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(0));

  private static ByteBuffer frameBuffer(int size) {
    ByteBuffer b = FRAMES.get();
    if (b.capacity() < size) {
      b = ByteBuffer.allocateDirect(Math.max(size, Math.min(2 * b.capacity(), MAX_VERIFIED_ENTRY)));
      FRAMES.set(b);
    }
    return b.clear().limit(size);
  }

  private void readFully(ReadableByteChannel in, ByteBuffer buf, long pos) throws IOException {
    while (buf.hasRemaining()) {
      if (in.read(buf) < 0) {
        throw new IOException(
            source.describe() + ": blob " + blob.digest() + " ended at " + (pos + buf.position()));
      }
    }
  }

  /**
   * Writes the first {@code n} bytes of {@code buf} at {@code pos}, zero-padded to a whole block.
   */
  private void writePadded(ByteBuffer buf, int n, long pos) throws IOException {
    int padded = (int) AlignedBuffers.roundUp(n, AlignedBuffers.ALIGNMENT);
    buf.limit(padded).position(n);
    while (buf.hasRemaining()) {
      buf.put((byte) 0);
    }
    buf.flip();
    sink.write(buf, pos);
    stats.bytesWritten.add(padded);
  }

  /** Completes every requested chunk whose bytes all lie below {@code pos}. */
  private void completeUpTo(long pos, int last, int[] next) {
    while (next[0] <= last && map.chunkDataEnd(next[0]) <= pos) {
      complete(next[0]++);
    }
  }

  /**
   * Writes every chunk that is neither present nor being fetched from {@code verified}, a local
   * copy of the whole blob whose sha256 the caller has checked (full prefetch of a blob without a
   * digest table). Returns the bytes written.
   */
  public long fillFrom(FileChannel verified) throws IOException {
    if (verified.size() != blob.size()) {
      throw new IOException(
          "verified copy of "
              + blob.digest()
              + " has "
              + verified.size()
              + " bytes, expected "
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
              throw new IOException(
                  "verified copy of " + blob.digest() + " ended at " + (pos + buf.position()));
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

  /**
   * Fails every chunk of [first, last] still in flight (those written meanwhile are complete
   * already).
   */
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

  @Override
  public String toString() {
    return "fetcher of "
        + blob.digest().shortHex()
        + " ("
        + map.readyCount()
        + "/"
        + map.chunkCount()
        + " chunks"
        + (table != null ? ", verified" : "")
        + ")";
  }
}

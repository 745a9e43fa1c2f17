package dev.lazypull.daemon;

import dev.lazypull.cache.ChunkFetcher;
import dev.lazypull.cache.ChunkMap;
import dev.lazypull.cache.ChunkWriter;
import dev.lazypull.cache.ReadAhead;
import dev.lazypull.cachefiles.Devnode;
import dev.lazypull.catalog.BlobBinding;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.function.Function;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One kernel cachefiles object (a cookie's backing file) that the daemon has opened: its anon fd(s), the blob
 * it serves and the fetch state of its cache file.
 *
 * <p>Anon fds are reference-counted: CLOSE drops the table's reference, and the fds are closed only when the
 * last READ or fetch using them is done. A descriptor number is never closed while another thread may still
 * write through it — after close(2) the number can be reused for an unrelated file.
 */
final class CacheObject implements ChunkWriter {
  private static final Logger LOG = Logger.getLogger(CacheObject.class.getName());

  final int objectId;
  final String volumeKey;
  final String cookieKey;
  final BlobBinding binding;
  /** Builds this object's fetcher for a chunk map (the fixed-size one at OPEN, a table-cut one once known). */
  private final Function<ChunkMap, ChunkFetcher> fetcherFactory;
  private volatile ChunkFetcher fetcher;
  private final Devnode devnode;
  private final List<Integer> fds = new ArrayList<>();
  private int refs = 1;
  private boolean closed;
  /** The probe of what the cache file holds (after the digest table, if any): fetches wait for it. */
  private CompletableFuture<Void> rebuilt;
  /** Loads the blob's chunk digest table; null when the image has none. */
  private volatile java.util.function.Supplier<CompletableFuture<ChunkDigestTable>> tableLoader;
  private ReadAhead readAhead;
  private ChunkMap readAheadMap;
  /** Largest single ranged read issued for read-ahead. */
  static final long MAX_READ_AHEAD_MERGE = 32L << 20;

  CacheObject(int objectId, String volumeKey, String cookieKey, BlobBinding binding, int fd, Devnode devnode,
      ChunkMap map, java.util.function.BiFunction<CacheObject, ChunkMap, ChunkFetcher> fetcherFactory) {
    this.objectId = objectId;
    this.volumeKey = volumeKey;
    this.cookieKey = cookieKey;
    this.binding = binding;
    this.devnode = devnode;
    this.fds.add(fd);
    this.fetcherFactory = m -> fetcherFactory.apply(this, m);
    this.fetcher = this.fetcherFactory.apply(map);
  }

  /** Takes a reference for a READ or fetch; false once the object is closed. */
  synchronized boolean acquire() {
    if (closed) {
      return false;
    }
    refs++;
    return true;
  }

  void release() {
    List<Integer> toClose = null;
    synchronized (this) {
      if (--refs == 0) {
        toClose = new ArrayList<>(fds);
        fds.clear();
      }
    }
    if (toClose != null) {
      for (int fd : toClose) {
        devnode.closeAnonFd(fd);
      }
    }
  }

  /** CLOSE from the kernel (or daemon shutdown): no new users; fds go when the last user releases. */
  void markClosed() {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
    }
    release();
  }

  synchronized boolean isClosed() {
    return closed;
  }

  /** Another fd for the same object (an OPEN re-delivered after {@code restore}). */
  synchronized boolean addFd(int fd) {
    if (closed) {
      return false;
    }
    fds.add(fd);
    return true;
  }

  /** The fd used for writes and replies. Callers hold a reference. */
  synchronized int fd() {
    if (fds.isEmpty()) {
      throw new IllegalStateException("object " + objectId + " has no open fd");
    }
    return fds.get(0);
  }

  /** The fetch state of this object's cache file. */
  ChunkFetcher fetcher() {
    return fetcher;
  }

  /**
   * Requires every fetch of this object to be verified against the chunk digest table {@code loader} gives.
   * Call before the first fetch.
   */
  void verifyWith(java.util.function.Supplier<CompletableFuture<ChunkDigestTable>> loader) {
    this.tableLoader = loader;
  }

  /**
   * Gets the object ready to fetch, on the fetch pool: for an image with chunk digest tables, loads the table and
   * re-cuts the chunk map along its entries (each chunk then one verifiable unit: nothing fetched twice,
   * nothing written unverified); then learns what the cache file already holds (SEEK_DATA/SEEK_HOLE on the
   * anon fd). Called right after copen — the kernel attaches the backing file only once copen returns and the
   * anon fd answers ENOBUFS until then, so the probe retries briefly. A failed table load fails the waiting
   * READs (EIO) and is tried again by the next one.
   */
  synchronized CompletableFuture<Void> ready(Executor pool) {
    if (rebuilt == null || rebuilt.isCompletedExceptionally()) {
      java.util.function.Supplier<CompletableFuture<ChunkDigestTable>> loader = tableLoader;
      CompletableFuture<Void> table = loader == null || fetcher.verifying()
          ? CompletableFuture.completedFuture(null)
          : loader.get().thenAccept(t -> {
            ChunkFetcher verified = fetcherFactory.apply(ChunkMap.forTable(t));
            verified.verifyWith(t);
            fetcher = verified;
          });
      rebuilt = table.thenRunAsync(this::rebuildChunkMap, pool);
    }
    return rebuilt;
  }

  /** Makes {@code [offset, offset+length)} present, once the cache file's contents are known. */
  CompletableFuture<Void> ensure(long offset, long length, Executor pool) {
    return ensure(offset, length, 0, pool);
  }

  /** {@link #ensure(long, long, Executor)} merging into ranged reads of up to {@code merge} bytes (0: default). */
  CompletableFuture<Void> ensure(long offset, long length, long merge, Executor pool) {
    CompletableFuture<Void> init = ready(pool);
    if (init.isDone() && !init.isCompletedExceptionally()) {
      return merge > 0 ? fetcher.ensure(offset, length, merge) : fetcher.ensure(offset, length);
    }
    return init.thenCompose(v -> merge > 0 ? fetcher.ensure(offset, length, merge) : fetcher.ensure(offset, length));
  }

  /** Prefetch: like {@link #ensure}, with new fetches run on {@code prefetchPool}. */
  CompletableFuture<Void> prefetch(long offset, long length, Executor fetchPool, Executor prefetchPool) {
    return ready(fetchPool).thenCompose(v -> fetcher.ensure(offset, length, prefetchPool));
  }

  /**
   * Fetches ahead of a sequential reader (see {@link ReadAhead}); never waits. Failures are dropped: the
   * reader's own READ, when it comes, fetches the range again and reports the error.
   *
   * @return the range queued ahead of the reader, or null
   */
  ReadAhead.Range readAhead(long offset, long length, long windowBytes, long mergeLimit, Executor pool) {
    ReadAhead policy;
    synchronized (this) {
      ChunkMap map = fetcher.map();
      if (readAhead == null || readAheadMap != map) { // the map is re-cut once a digest table is known
        readAhead = new ReadAhead(map, windowBytes);
        readAheadMap = map;
      }
      policy = readAhead;
    }
    ReadAhead.Range ahead = policy.onRead(offset, length);
    if (ahead != null) {
      try {
        // Fewer, larger ranged reads than for a blocked READ: per-request cost (TTFB, registry overhead) is what
        // limits a sequential stream; two streams per extension keep some parallelism.
        long merge = Math.max(mergeLimit, Math.min(MAX_READ_AHEAD_MERGE, ahead.length() / 2));
        ensure(ahead.offset(), ahead.length(), merge, pool).exceptionally(e -> null);
      } catch (RuntimeException e) {
        LOG.fine(() -> this + ": read-ahead not queued: " + e);
        return null;
      }
    }
    return ahead;
  }

  private void rebuildChunkMap() {
    if (!acquire()) {
      return;
    }
    try {
      int fd = fd();
      ChunkMap map = fetcher.map();
      ChunkMap.ExtentProbe probe = new ChunkMap.ExtentProbe() {
        @Override
        public long seekData(long offset) throws IOException {
          return devnode.seekData(fd, offset);
        }

        @Override
        public long seekHole(long offset) throws IOException {
          return devnode.seekHole(fd, offset);
        }
      };
      for (int attempt = 0; ; attempt++) {
        try {
          map.rebuild(probe);
          break;
        } catch (ErrnoException e) {
          if (e.errno() != Errno.ENOBUFS || attempt >= 100 || isClosed()) {
            throw e;
          }
          Thread.sleep(5); // backing file not attached yet
        }
      }
      if (map.readyCount() > 0) {
        LOG.fine(() -> "object " + objectId + " (" + binding.blob().digest().shortHex() + "): " + map.readyCount()
            + " of " + map.chunkCount() + " chunks already cached");
      }
    } catch (IOException | RuntimeException e) {
      // Not fatal: unknown readiness only costs refetching chunks the file already holds.
      LOG.log(Level.WARNING, "object " + objectId + ": cannot probe cached extents: " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      release();
    }
  }

  @Override
  public void write(ByteBuffer buf, long offset) throws IOException {
    if (!acquire()) {
      throw new IOException("object " + objectId + " was closed by the kernel");
    }
    try {
      int want = buf.remaining();
      long n = devnode.pwrite(fd(), buf, offset);
      if (n < want) { // the anon fd reports >= the request on every kernel; less means trouble
        throw new IOException("short write to object " + objectId + " at " + offset + ": " + n + " of " + want);
      }
    } finally {
      release();
    }
  }

  @Override
  public String toString() {
    return "object " + objectId + " [" + volumeKey + " / " + binding.blob().digest().shortHex() + "]";
  }
}

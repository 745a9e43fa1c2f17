package dev.lazypull.cache;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.Descriptor;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.GuardedFd;
import dev.lazypull.sys.Posix;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;

/**
 * A local, daemon-owned cache file of one blob: a sparse file of the blob's size rounded up to 4096, filled
 * chunk by chunk through the shared fetch core ({@link ChunkFetcher}: chunk-aligned, merged, in-flight dedup)
 * and read back with pread. The file itself is the record of what is cached: at open, chunk readiness is
 * rebuilt from SEEK_DATA/SEEK_HOLE, so a restart keeps everything fetched before (a chunk is data only after
 * all its bytes were written; a partly written chunk reads as holes and is fetched again).
 *
 * <p>One process owns a file at a time (an exclusive flock, taken at open): two owners could each believe a
 * chunk the other is half-way through writing is present. The lock also marks the file in use for
 * {@link BlobCacheGc}. {@link #read} refuses ranges that are not fully
 * cached, so a hole is never served as zeros by mistake. Thread-safe; I/O after {@link #close} fails with an
 * IOException and never touches a reused descriptor.
 */
public final class BlobCacheFile implements Closeable, ChunkWriter {
  private final Path path;
  private final Descriptor blob;
  private final GuardedFd fd;
  private final ChunkFetcher fetcher;

  private BlobCacheFile(Path path, Descriptor blob, int fd, BlobSource source, ChunkMap map, FetchContext ctx) {
    this.path = path;
    this.blob = blob;
    this.fd = new GuardedFd(fd, "cache file " + path);
    this.fetcher = new ChunkFetcher(blob, source, this, map, ctx.pool(), ctx.mergeLimit(), ctx.stats(),
        ctx.buffers());
  }

  /**
   * Opens (creating if needed) the cache file of {@code blob} at {@code path}, sized to the padded blob, with
   * readiness rebuilt from the file's data extents. The file system must report holes (SEEK_HOLE); see
   * {@link BlobCacheDir}, which checks that once per directory.
   *
   * @throws IOException if the file cannot be opened, is locked by another process, or cannot be probed
   */
  public static BlobCacheFile open(Path path, Descriptor blob, BlobSource source, FetchContext ctx)
      throws IOException {
    return open(path, blob, source, ctx, null);
  }

  /**
   * {@link #open(Path, Descriptor, BlobSource, FetchContext)}, every fetch verified against {@code table} when
   * not null: chunks are then the table's entries (as the daemon re-cuts its objects), so each is fetched,
   * checked and marked ready as one unit — never fetched again because a neighbouring run wrote it unmarked.
   */
  static BlobCacheFile open(Path path, Descriptor blob, BlobSource source, FetchContext ctx,
      dev.lazypull.image.ChunkDigestTable table) throws IOException {
    Files.createDirectories(path.toAbsolutePath().getParent());
    ChunkMap map = table != null ? ChunkMap.forTable(table) : new ChunkMap(blob.size(), ctx.chunkSize());
    int fd = openLocked(path);
    try {
      touch(path);
      OPEN_HERE.add(path.toAbsolutePath().normalize());
      long size = Posix.lseek(fd, 0, Posix.SEEK_END);
      if (size != map.paddedSize()) {
        // Content-addressed: any bytes already there are this blob's. Cut or extend to the padded size so
        // SEEK_HOLE at the end and the last chunk's extent are what the map expects.
        Posix.ftruncate(fd, map.paddedSize());
      }
      map.rebuild(new ChunkMap.ExtentProbe() {
        @Override
        public long seekData(long offset) throws IOException {
          return Posix.lseek(fd, offset, Posix.SEEK_DATA);
        }

        @Override
        public long seekHole(long offset) throws IOException {
          return Posix.lseek(fd, offset, Posix.SEEK_HOLE);
        }
      });
      BlobCacheFile f = new BlobCacheFile(path, blob, fd, source, map, ctx);
      if (table != null) {
        f.verifyWith(table);
      }
      return f;
    } catch (IOException | RuntimeException e) {
      OPEN_HERE.remove(path.toAbsolutePath().normalize());
      Posix.closeQuietly(fd);
      throw e;
    }
  }

  /**
   * Cache files this process has open. The flock marks a file in use for other processes; within one process
   * the collector checks this too, because where flock is emulated with POSIX locks (NFS) a process's own
   * locks never conflict with each other.
   */
  private static final java.util.Set<Path> OPEN_HERE = java.util.concurrent.ConcurrentHashMap.newKeySet();

  /** Whether this process has {@code path} open as a cache file. */
  static boolean isOpenHere(Path path) {
    return OPEN_HERE.contains(path.toAbsolutePath().normalize());
  }

  /**
   * Opens and locks the file. A collector ({@link BlobCacheGc}) holds the lock for a moment while it deletes an
   * unused file, and may delete the path between our open and our lock: wait a little for the lock, and open
   * again if the locked file is no longer the one at {@code path}.
   */
  private static int openLocked(Path path) throws IOException {
    for (int attempt = 0; ; attempt++) {
      int fd = Posix.open(path.toString(), Posix.O_RDWR | Posix.O_CREAT | Posix.O_CLOEXEC, 0600);
      boolean keep = false;
      try {
        if (!Posix.tryLockExclusive(fd, path.toString())) {
          if (attempt >= LOCK_ATTEMPTS) {
            throw new CacheFileInUseException("cache file " + path + " is in use by another lazypull process");
          }
        } else if (isFileAt(fd, path)) {
          keep = true;
          return fd;
        }
      } finally {
        if (!keep) {
          Posix.closeQuietly(fd);
        }
      }
      try {
        Thread.sleep(LOCK_RETRY_MILLIS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("waiting for " + path);
      }
    }
  }

  private static final int LOCK_ATTEMPTS = 25;
  private static final long LOCK_RETRY_MILLIS = 20;

  /** Whether {@code fd} is the file {@code path} names now (not one unlinked since it was opened). */
  static boolean isFileAt(int fd, Path path) throws IOException {
    try {
      Object open = Files.getAttribute(Path.of("/proc/self/fd/" + fd), "unix:ino");
      Object named = Files.getAttribute(path, "unix:ino", java.nio.file.LinkOption.NOFOLLOW_LINKS);
      return open.equals(named);
    } catch (java.nio.file.NoSuchFileException e) {
      return false;
    }
  }

  /** Marks the file used now: the cache's collector removes the least recently used files first. */
  private static void touch(Path path) {
    try {
      Files.setLastModifiedTime(path, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis()));
    } catch (IOException e) {
      // only LRU order suffers
    }
  }

  public Path path() {
    return path;
  }

  public Descriptor blob() {
    return blob;
  }

  /**
   * Verifies every later fetch against the blob's chunk digest table (whole table entries, before they are
   * written). {@link BlobCacheDir#file(Descriptor, BlobSource, Descriptor)} calls it before handing the file
   * out, so no byte is fetched unverified.
   */
  void verifyWith(dev.lazypull.image.ChunkDigestTable table) {
    fetcher.verifyWith(table);
  }

  /** Whether fetched bytes are verified against a chunk digest table. */
  public boolean verifying() {
    return fetcher.verifying();
  }

  /** Chunk readiness (for status and tests). */
  public ChunkMap map() {
    return fetcher.map();
  }

  /** The padded size: the blob's size rounded up to 4096, zeros past the blob's end. */
  public long size() {
    return fetcher.map().paddedSize();
  }

  /**
   * Makes {@code [offset, offset+length)} (clamped to the file) present; never blocks, does no I/O on the
   * caller's thread. The future fails with the fetch error.
   */
  public CompletableFuture<Void> ensure(long offset, long length) {
    return fetcher.ensure(offset, length);
  }

  /** Whether every chunk overlapping {@code [offset, offset+length)} is present. */
  public boolean isCached(long offset, long length) {
    ChunkMap map = fetcher.map();
    if (length <= 0) {
      return true;
    }
    if (offset < 0 || offset + length > map.paddedSize()) {
      return false;
    }
    for (int c = map.chunkOf(offset), last = map.chunkOf(offset + length - 1); c <= last; c++) {
      if (!map.isReady(c)) {
        return false;
      }
    }
    return true;
  }

  /**
   * Reads {@code dst.remaining()} bytes at {@code offset} into {@code dst} (a direct buffer), advancing its
   * position. The range must be cached ({@link #ensure} completed): an uncached range is an IOException, never
   * zeros.
   */
  public void read(ByteBuffer dst, long offset) throws IOException {
    int want = dst.remaining();
    if (!isCached(offset, want)) {
      throw new IOException("cache file " + path + ": range " + offset + "+" + want + " is not cached");
    }
    fd.use(f -> {
      long pos = offset;
      while (dst.hasRemaining()) {
        long n = Posix.pread(f, dst, pos);
        if (n <= 0) {
          throw new IOException("cache file " + path + " ended at " + pos + " (expected " + size() + " bytes)");
        }
        dst.position(dst.position() + (int) n);
        pos += n;
      }
      return null;
    });
  }

  /** {@link ChunkWriter}: the fetch core's aligned, whole-block writes go straight into the file. */
  @Override
  public void write(ByteBuffer buf, long offset) throws IOException {
    try {
      fd.use(f -> {
        ByteBuffer b = buf.duplicate();
        long pos = offset;
        while (b.hasRemaining()) {
          long n = Posix.pwrite(f, b, pos);
          if (n <= 0) {
            throw new IOException("cache file " + path + ": pwrite at " + pos + " wrote nothing");
          }
          b.position(b.position() + (int) n);
          pos += n;
        }
        return null;
      });
    } catch (ErrnoException e) {
      throw new IOException("cache file " + path + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    try {
      fd.use(f -> { // still locked: the path is ours to mark
        touch(path);
        OPEN_HERE.remove(path.toAbsolutePath().normalize());
        return null;
      });
    } catch (IOException e) {
      // already closed
    }
    fd.close();
  }

  @Override
  public String toString() {
    return "cache file " + path + " (" + fetcher.map().readyCount() + "/" + fetcher.map().chunkCount()
        + " chunks)";
  }
}

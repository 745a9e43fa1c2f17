package dev.lazypull.fetch;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.sys.AlignedBuffers;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.GuardedFd;
import dev.lazypull.sys.Posix;
import java.io.Closeable;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.logging.Logger;

/**
 * One blob's file in the host cache ({@link BlobCacheDir}): a sparse file of the blob's size
 * rounded up to 4096, filled chunk by chunk through the fetch core and read back with pread — by
 * every front end and every lazypull process on the machine at once. The file itself is the record
 * of what is cached: readiness is rebuilt from SEEK_DATA/SEEK_HOLE at open and, for chunks another
 * process may have filled since, under a claim before each fetch (a chunk is data only after all
 * its bytes were written; a partly written chunk reads as holes and is fetched again).
 *
 * <p>Every user holds a shared flock on the file while it has it open: that marks it in use for
 * {@link BlobCacheGc}. Fetches claim their ranges in the blob's {@link ClaimsFile}. {@link #read}
 * refuses ranges that are not cached, so a hole is never served as zeros by mistake. Thread-safe;
 * I/O after {@link #close} fails with an IOException and never touches a reused descriptor.
 */
public final class BlobCacheFile implements Closeable, ChunkSink {
  private static final Logger LOG = Logger.getLogger(BlobCacheFile.class.getName());
  private static final int LOCK_ATTEMPTS = 25;
  private static final long LOCK_RETRY_MILLIS = 20;

  /**
   * Cache files this process has open. The flock marks a file in use for other processes; within
   * one process the collector checks this too, because where flock is emulated with POSIX locks
   * (NFS) a process's own locks never conflict with each other.
   */
  private static final Set<Path> OPEN_HERE = ConcurrentHashMap.newKeySet();

  private final Path path;
  private final BlobRef ref;
  private final GuardedFd fd;
  private final ClaimsFile claims;
  private final long paddedSize;
  private final CompletableFuture<ChunkFetcher> fetcher;

  private BlobCacheFile(
      Path path,
      BlobRef ref,
      GuardedFd fd,
      ClaimsFile claims,
      long paddedSize,
      Function<BlobCacheFile, CompletableFuture<ChunkFetcher>> fetcher) {
    this.path = path;
    this.ref = ref;
    this.fd = fd;
    this.claims = claims;
    this.paddedSize = paddedSize;
    this.fetcher = fetcher.apply(this);
  }

  /**
   * Opens (creating if needed) the cache file of {@code ref}'s blob at {@code path}, sized to the
   * padded blob, its fetcher built by {@code core} from {@code source}, its fetches claimed in
   * {@code claims} (the blob's claims file, opened once per process by {@link BlobCacheDir}).
   *
   * @throws IOException if the file cannot be opened or sized
   */
  static BlobCacheFile open(
      Path path, ClaimsFile claims, BlobRef ref, BlobSource source, FetchCore core)
      throws IOException {
    Files.createDirectories(path.toAbsolutePath().getParent());
    long padded = AlignedBuffers.roundUp(ref.deviceSize(), AlignedBuffers.ALIGNMENT);
    createSized(path, padded);
    int dataFd = openInUse(path);
    try {
      touch(path);
      OPEN_HERE.add(key(path));
      long size = Posix.lseek(dataFd, 0, Posix.SEEK_END);
      if (size != padded) {
        resize(dataFd, path, size, padded);
      }
      GuardedFd data = new GuardedFd(dataFd, "cache file " + path);
      return new BlobCacheFile(
          path, ref, data, claims, padded, self -> core.open(ref, source, self));
    } catch (IOException | RuntimeException e) {
      OPEN_HERE.remove(key(path));
      Posix.closeQuietly(dataFd);
      throw e;
    }
  }

  /**
   * Gives a file of the wrong size the blob's padded size. Every user sizes a file before writing,
   * so a new file has size 0 and any other size means bytes nobody can vouch for (a crash
   * mid-resize, a damaged file, an image that lists the blob with another size): they are dropped —
   * but only while no other process uses the file (its readers trust what they have seen cached),
   * so the in-use lock is made exclusive for the resize.
   */
  private static void resize(int fd, Path path, long size, long padded) throws IOException {
    if (!Posix.tryLockExclusive(fd, path.toString())) {
      throw new IOException(
          "cache file "
              + path
              + " is in use with "
              + size
              + " bytes, but this image's blob "
              + "takes "
              + padded);
    }
    if (size != 0) {
      LOG.warning(
          "cache file "
              + path
              + " has "
              + size
              + " bytes, not "
              + padded
              + ": its contents are dropped");
      Posix.ftruncate(fd, 0);
    }
    Posix.ftruncate(fd, padded);
    if (!Posix.tryLockShared(fd, path.toString())) { // a downgrade: never refused
      throw new IOException("cache file " + path + ": cannot return to a shared lock");
    }
  }

  /**
   * Creates the file at {@code path}, when there is none, already at its padded size: made under a
   * temporary name, sized, then linked into place (link(2) fails if another process got there
   * first: its file is as good). So no process ever finds a new cache file still at size 0 — which
   * another one, starting at the same moment, would have to resize while the first holds it in use,
   * and could not.
   */
  private static void createSized(Path path, long padded) throws IOException {
    if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    Path tmp =
        path.resolveSibling(
            "."
                + path.getFileName()
                + "."
                + ProcessHandle.current().pid()
                + "."
                + Thread.currentThread().getId()
                + ".new");
    int fd =
        Posix.open(
            tmp.toString(), Posix.O_RDWR | Posix.O_CREAT | Posix.O_TRUNC | Posix.O_CLOEXEC, 0600);
    try {
      Posix.ftruncate(fd, padded);
    } finally {
      Posix.closeQuietly(fd);
    }
    try {
      Files.createLink(path, tmp);
    } catch (FileAlreadyExistsException e) {
      // another process created it meanwhile, sized as well
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private static Path key(Path path) {
    return path.toAbsolutePath().normalize();
  }

  /** Whether this process has {@code path} open as a cache file. */
  static boolean isOpenHere(Path path) {
    return OPEN_HERE.contains(key(path));
  }

  /**
   * Opens the file and takes the shared in-use lock. A collector ({@link BlobCacheGc}) holds the
   * exclusive lock for a moment while it deletes an unused file, and may delete the path between
   * our open and our lock: wait a little for the lock, and open again if the locked file is no
   * longer the one at {@code path}.
   */
  private static int openInUse(Path path) throws IOException {
    for (int attempt = 0; ; attempt++) {
      int fd = Posix.open(path.toString(), Posix.O_RDWR | Posix.O_CREAT | Posix.O_CLOEXEC, 0600);
      boolean keep = false;
      try {
        if (!Posix.tryLockShared(fd, path.toString())) {
          if (attempt >= LOCK_ATTEMPTS) {
            throw new IOException("cache file " + path + " stays locked by a cache collector");
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
        Thread.sleep(
            LOCK_RETRY_MILLIS); // a collector holds the file for one unlink: no event to wait on
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("waiting for " + path);
      }
    }
  }

  /**
   * Whether {@code fd} is the file {@code path} names now (not one unlinked since it was opened).
   */
  static boolean isFileAt(int fd, Path path) throws IOException {
    try {
      Object open = Files.getAttribute(Path.of("/proc/self/fd/" + fd), "unix:ino");
      Object named = Files.getAttribute(path, "unix:ino", LinkOption.NOFOLLOW_LINKS);
      return open.equals(named);
    } catch (NoSuchFileException e) {
      return false;
    }
  }

  /** Marks the file used now: the cache's collector removes the least recently used files first. */
  private static void touch(Path path) {
    try {
      Files.setLastModifiedTime(path, FileTime.fromMillis(System.currentTimeMillis()));
    } catch (IOException e) {
      // only LRU order suffers
    }
  }

  public Path path() {
    return path;
  }

  /** The blob's claims file: only lazypull processes that fill this blob have it open. */
  public Path claimsPath() {
    return claims.path();
  }

  public BlobRef ref() {
    return ref;
  }

  /** The padded size: the blob's size rounded up to 4096, zeros past the blob's end. */
  public long size() {
    return paddedSize;
  }

  /** The file's fetcher, once its digest table (if any) is loaded and its contents probed. */
  public CompletableFuture<ChunkFetcher> fetcher() {
    return fetcher;
  }

  /**
   * Makes {@code [offset, offset+length)} (clamped to the file) present; never blocks, does no I/O
   * on the caller's thread. The future fails with the fetch error.
   */
  public CompletableFuture<Void> ensure(long offset, long length) {
    ChunkFetcher f = fetcher.getNow(null);
    return f != null
        ? f.ensure(offset, length)
        : fetcher.thenCompose(x -> x.ensure(offset, length));
  }

  /** Whether every chunk overlapping {@code [offset, offset+length)} is known to be present. */
  public boolean isCached(long offset, long length) {
    if (length <= 0) {
      return true;
    }
    ChunkFetcher f = fetcher.getNow(null);
    return f != null && offset >= 0 && offset + length <= paddedSize && f.isPresent(offset, length);
  }

  /**
   * Reads {@code dst.remaining()} bytes at {@code offset} into {@code dst} (a direct buffer),
   * advancing its position. The range must be cached ({@link #ensure} completed): an uncached range
   * is an IOException, never zeros.
   */
  public void read(ByteBuffer dst, long offset) throws IOException {
    int want = dst.remaining();
    if (!isCached(offset, want)) {
      throw new IOException(
          "cache file " + path + ": range " + offset + "+" + want + " is not cached");
    }
    fd.use(
        f -> {
          long pos = offset;
          while (dst.hasRemaining()) {
            long n = Posix.pread(f, dst, pos);
            if (n <= 0) {
              throw new IOException(
                  "cache file " + path + " ended at " + pos + " (expected " + size() + " bytes)");
            }
            dst.position(dst.position() + (int) n);
            pos += n;
          }
          return null;
        });
  }

  /** {@link ChunkSink}: the fetch core's aligned, whole-block writes go straight into the file. */
  @Override
  public void write(ByteBuffer buf, long offset) throws IOException {
    try {
      fd.use(
          f -> {
            ByteBuffer b = buf.duplicate();
            long pos = offset;
            while (b.hasRemaining()) {
              long n = Posix.pwrite(f, b, pos);
              if (n <= 0) {
                throw new IOException(
                    "cache file " + path + ": pwrite at " + pos + " wrote nothing");
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
  public long seekData(long offset) throws IOException {
    return fd.use(f -> Posix.lseek(f, offset, Posix.SEEK_DATA));
  }

  @Override
  public long seekHole(long offset) throws IOException {
    return fd.use(f -> Posix.lseek(f, offset, Posix.SEEK_HOLE));
  }

  @Override
  public boolean isOpen() {
    return fd.isOpen();
  }

  @Override
  public RangeClaims claims() {
    return claims;
  }

  @Override
  public void close() {
    try {
      fd.use(
          f -> { // still holding the in-use lock: the path is ours to mark
            touch(path);
            OPEN_HERE.remove(key(path));
            return null;
          });
    } catch (IOException e) {
      // already closed
    }
    fd.close();
  }

  @Override
  public String toString() {
    ChunkFetcher f = fetcher.getNow(null);
    return "cache file "
        + path
        + (f == null ? "" : " (" + f.map().readyCount() + "/" + f.map().chunkCount() + " chunks)");
  }
}

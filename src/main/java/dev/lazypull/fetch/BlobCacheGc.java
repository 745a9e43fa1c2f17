package dev.lazypull.fetch;

import dev.lazypull.image.Digest;
import dev.lazypull.sys.DaemonThreads;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Posix;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * Keeps a {@link BlobCacheDir} (the NBD exports' and standalone prefetch's cache) within a size
 * budget by deleting whole blob files, least recently used first (a file's mtime: set when a
 * process opens or closes it and by every write), never one in use.
 *
 * <p>"In use" is the shared flock every user holds while the file is open ({@link BlobCacheFile}),
 * so several {@code lazypull nbd} processes sharing one directory can each collect it: a file is
 * deleted only while the collector holds it exclusively, and an owner that opened the path just
 * before it was deleted notices (its descriptor no longer names the path) and opens a fresh file.
 * Chunk digest tables ({@code tables/}) are counted but kept: they are 48 bytes per chunk and let a
 * later export skip the registry for them.
 */
public final class BlobCacheGc {
  private static final Logger LOG = Logger.getLogger(BlobCacheGc.class.getName());

  /**
   * What one collection did; sizes are allocated bytes (what the cache takes on disk), not apparent
   * sizes.
   */
  public record Report(
      long usageBefore, long usageAfter, long budget, int removed, long bytesFreed, int inUse) {}

  private record Entry(Path path, long bytes, long lastUsedMillis) {}

  private BlobCacheGc() {}

  /** Allocated bytes of everything in the cache directory. */
  public static long usage(Path dir) throws IOException {
    return bytes(scan(BlobCacheDir.blobsDir(dir))) + bytes(scan(BlobCacheDir.tablesDir(dir)));
  }

  private static long bytes(List<Entry> entries) {
    return entries.stream().mapToLong(Entry::bytes).sum();
  }

  /**
   * Deletes unused blob files, least recently used first, until the directory's usage is at most
   * {@code budget} bytes; {@code budget <= 0} only measures.
   */
  public static Report collect(Path dir, long budget) throws IOException {
    List<Entry> blobs = scan(BlobCacheDir.blobsDir(dir));
    long before = bytes(blobs) + bytes(scan(BlobCacheDir.tablesDir(dir))); // one look at each file
    long usage = before;
    int removed = 0;
    int inUse = 0;
    long freed = 0;
    if (budget > 0 && usage > budget) {
      blobs.sort(Comparator.comparingLong(Entry::lastUsedMillis));
      for (Entry e : blobs) {
        if (usage <= budget) {
          break;
        }
        if (removeIfUnused(e.path(), e.lastUsedMillis())) {
          usage -= e.bytes();
          freed += e.bytes();
          removed++;
          LOG.info(
              "removed " + e.path() + " (" + e.bytes() + " bytes) from the cache: over its budget");
        } else {
          inUse++;
        }
      }
      if (usage > budget) {
        LOG.warning(
            "cache "
                + dir
                + " uses "
                + usage
                + " bytes, over its budget of "
                + budget
                + ": the rest is in use");
      }
    }
    return new Report(before, usage, budget, removed, freed, inUse);
  }

  /**
   * Collects {@code dir} to {@code budget} every {@code period} on a daemon thread, until closed (a
   * long-running export's own files stay, locked; other exports' and finished prefetches' go
   * first). Failures are logged, never thrown: the cache serves regardless.
   */
  public static AutoCloseable keepWithin(Path dir, long budget, Duration period) {
    ScheduledExecutorService timer =
        Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("lazypull-cache-gc"));
    timer.scheduleWithFixedDelay(
        () -> {
          try {
            collect(dir, budget);
          } catch (IOException | RuntimeException e) {
            LOG.warning("cache " + dir + ": collecting to its budget failed: " + e.getMessage());
          }
        },
        period.toMillis(),
        period.toMillis(),
        TimeUnit.MILLISECONDS);
    return timer::shutdownNow;
  }

  /** Where the cache rooted at {@code root} keeps blob {@code digest}. */
  public static Path blobFile(Path root, Digest digest) {
    return BlobCacheDir.blobsDir(root.toAbsolutePath().normalize()).resolve(digest.hex());
  }

  /** Deletes {@code path} while holding its owner lock; false if a process has it open. */
  public static boolean removeIfUnused(Path path) throws IOException {
    return removeIfUnused(path, Long.MAX_VALUE);
  }

  /**
   * Deletes {@code path} while holding its owner lock, if the locked file is still the one at
   * {@code path} (not one another collector deleted and an owner re-created meanwhile) and was not
   * used after {@code scannedMtime}; false if it is in use (or was, since the scan).
   */
  static boolean removeIfUnused(Path path, long scannedMtime) throws IOException {
    if (BlobCacheFile.isOpenHere(path)) {
      return false;
    }
    int fd;
    try {
      fd = Posix.open(path.toString(), Posix.O_RDONLY | Posix.O_CLOEXEC, 0);
    } catch (ErrnoException e) {
      if (e.errno() == Errno.ENOENT) {
        return true; // someone else collected it
      }
      throw e;
    }
    try {
      if (!Posix.tryLockExclusive(fd, path.toString())) {
        return false;
      }
      if (!BlobCacheFile.isFileAt(fd, path)) {
        return !Files.exists(path); // gone: another collector's; re-created: an owner's now
      }
      if (Files.getLastModifiedTime(path).toMillis() > scannedMtime) {
        return false; // used since the scan: no longer the least recently used
      }
      Files.deleteIfExists(
          path); // under the lock: an owner that opened it meanwhile sees its path is gone
      // nobody holds claims on it: a user takes the in-use lock before it opens the claims file
      Files.deleteIfExists(
          BlobCacheDir.claimsPath(
              path.getParent().getParent().getParent(), path.getFileName().toString()));
      return true;
    } catch (NoSuchFileException e) {
      return true;
    } finally {
      Posix.closeQuietly(fd);
    }
  }

  private static List<Entry> scan(Path dir) throws IOException {
    List<Entry> out = new ArrayList<>();
    if (!Files.isDirectory(dir)) {
      return out;
    }
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
      for (Path f : files) {
        if (f.getFileName().toString().startsWith(".")) {
          continue; // temporary files of table writes
        }
        try {
          out.add(
              new Entry(
                  f, Posix.allocatedBytes(f.toString()), Files.getLastModifiedTime(f).toMillis()));
        } catch (NoSuchFileException | ErrnoException e) {
          // removed while we looked
        }
      }
    }
    return out;
  }
}

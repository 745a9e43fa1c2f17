package dev.lazypull.fetch;

import dev.lazypull.sys.GuardedFd;
import dev.lazypull.sys.Posix;
import dev.lazypull.sys.RangeLocks;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.logging.Logger;

/**
 * The claims of one blob's cache file: OFD record locks ({@link RangeLocks}) on a separate, empty
 * file ({@code claims/<hex>} in the host cache), held by a process while it fetches a range.
 * Separate from the data file, which the kernel reads and a fanotify front end watches: only
 * lazypull processes ever open a claims file, so having it open marks a process as one of the
 * cache's writers. One descriptor per process and blob (kept by {@link BlobCacheDir}), opened on
 * the first claim, when the user already holds the data file's in-use lock (so a collector cannot
 * delete it under a new claims file).
 */
final class ClaimsFile implements RangeClaims, Closeable {
  private static final Logger LOG = Logger.getLogger(ClaimsFile.class.getName());

  private final Path path;
  private final String what;
  private GuardedFd fd;
  private boolean closed;

  ClaimsFile(Path path) {
    this.path = path;
    this.what = "claims file " + path;
  }

  Path path() {
    return path;
  }

  private synchronized GuardedFd fd() throws IOException {
    if (closed) {
      throw new IOException(what + " is closed");
    }
    if (fd == null) {
      Files.createDirectories(path.toAbsolutePath().getParent());
      fd =
          new GuardedFd(
              Posix.open(path.toString(), Posix.O_RDWR | Posix.O_CREAT | Posix.O_CLOEXEC, 0600),
              what);
    }
    return fd;
  }

  @Override
  public boolean tryClaim(long offset, long length) throws IOException {
    return fd().use(f -> RangeLocks.tryLock(f, offset, length, what));
  }

  @Override
  public void claim(long offset, long length) throws IOException {
    fd().use(
            f -> {
              RangeLocks.lock(f, offset, length, what);
              return null;
            });
  }

  @Override
  public void release(long offset, long length) {
    try {
      fd().use(
              f -> {
                RangeLocks.unlock(f, offset, length, what);
                return null;
              });
    } catch (IOException e) { // closed: the locks went with the descriptor
      LOG.fine(() -> what + ": releasing " + offset + "+" + length + ": " + e.getMessage());
    }
  }

  @Override
  public boolean claimedElsewhere(long offset, long length) throws IOException {
    return fd().use(f -> RangeLocks.heldElsewhere(f, offset, length, what));
  }

  @Override
  public void close() {
    GuardedFd open;
    synchronized (this) {
      closed = true;
      open = fd;
    }
    if (open != null) {
      open.close();
    }
  }
}

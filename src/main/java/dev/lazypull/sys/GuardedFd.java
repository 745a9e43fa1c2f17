package dev.lazypull.sys;

import java.io.IOException;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A descriptor several threads use and any thread may close. Calls run under a read lock and close
 * takes the write lock, so close(2) never happens while a call is using the number — after close
 * the kernel may hand the same number to an unrelated file, and a late pread or write would hit
 * that file instead.
 */
public final class GuardedFd {
  /** A call on the descriptor. */
  public interface Call<T> {
    T apply(int fd) throws IOException;
  }

  /** Thrown by {@link #use} once the descriptor is closed. */
  public static final class ClosedException extends IOException {
    private static final long serialVersionUID = 1L;

    ClosedException(String what) {
      super(what + " is closed");
    }
  }

  private final int fd;
  private final String what;
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private boolean closed;

  /**
   * @param what names the descriptor in errors ("cache file /x", "kernel socket 1")
   */
  public GuardedFd(int fd, String what) {
    this.fd = fd;
    this.what = what;
  }

  /** Runs {@code call} with the descriptor; {@link ClosedException} once closed. */
  public <T> T use(Call<T> call) throws IOException {
    lock.readLock().lock();
    try {
      if (closed) {
        throw new ClosedException(what);
      }
      return call.apply(fd);
    } finally {
      lock.readLock().unlock();
    }
  }

  /** False once {@link #close} has begun. */
  public boolean isOpen() {
    lock.readLock().lock();
    try {
      return !closed;
    } finally {
      lock.readLock().unlock();
    }
  }

  /**
   * Closes the descriptor once no call is using it (idempotent). A call blocked in the kernel holds
   * it open: wake it first through {@link #use} (e.g. shutdown(2) a socket; calls may run
   * concurrently).
   */
  public void close() {
    lock.writeLock().lock();
    try {
      if (!closed) {
        closed = true;
        Posix.closeQuietly(fd);
      }
    } finally {
      lock.writeLock().unlock();
    }
  }
}

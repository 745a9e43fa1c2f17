package dev.lazypull.sys;

import com.sun.jna.Native;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Open-file-description record locks (fcntl {@code F_OFD_SETLK}, {@code F_OFD_SETLKW}, {@code
 * F_OFD_GETLK}, Linux 3.15+) on byte ranges of one file: how lazypull processes sharing a cache
 * file claim the chunks they are fetching, so each chunk is fetched once on the host.
 *
 * <p>OFD locks, not classic POSIX ones: POSIX locks belong to the process, so the kernel's deadlock
 * detection sees one thread's held range and another thread's wait as one process holding while
 * waiting, and refuses waits (EDEADLK) that are no deadlock at all; and they vanish when the
 * process closes any descriptor of the file. OFD locks belong to the open file description: all
 * locks taken through one descriptor share an owner (so threads of one process never conflict —
 * callers deduplicate their own threads first), they are released by closing that description only,
 * and a waiter simply waits. The price: a conflicting holder's pid is not reported. Thread-safe
 * (one scratch {@code struct flock} per thread).
 */
public final class RangeLocks {
  private static final int F_GETLK = 36; // F_OFD_GETLK
  private static final int F_SETLK = 37; // F_OFD_SETLK
  private static final int F_SETLKW = 38; // F_OFD_SETLKW
  private static final short F_WRLCK = 1;
  private static final short F_UNLCK = 2;

  /**
   * {@code struct flock} on 64-bit Linux: short type, short whence, (pad), off_t start, off_t len,
   * pid_t pid (0 for OFD locks).
   */
  private static final int SIZE = 32;

  private static final ThreadLocal<ByteBuffer> SCRATCH =
      ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(SIZE).order(ByteOrder.nativeOrder()));

  private RangeLocks() {}

  private static ByteBuffer flock(short type, long start, long length) {
    ByteBuffer b = SCRATCH.get();
    b.clear();
    for (int i = 0; i < SIZE; i++) {
      b.put(i, (byte) 0);
    }
    b.putShort(0, type).putShort(2, (short) Posix.SEEK_SET).putLong(8, start).putLong(16, length);
    return b;
  }

  private static int call(int fd, int cmd, ByteBuffer b, String subject) throws ErrnoException {
    while (true) {
      int r = Posix.fcntlPointer(fd, cmd, Posix.address(b));
      if (r == 0) {
        return 0;
      }
      int errno = Native.getLastError();
      if (errno == Errno.EINTR) {
        continue; // a signal interrupted the call (or the wait): again
      }
      if ((errno == Errno.EAGAIN || errno == Errno.EACCES) && cmd == F_SETLK) {
        return -1;
      }
      throw new ErrnoException("fcntl", subject, errno);
    }
  }

  /**
   * Takes a write lock on {@code [start, start+length)} if no other description holds any of it.
   */
  public static boolean tryLock(int fd, long start, long length, String subject)
      throws ErrnoException {
    return call(fd, F_SETLK, flock(F_WRLCK, start, length), subject) == 0;
  }

  /**
   * Takes a write lock on {@code [start, start+length)}, waiting while another description holds
   * any of it.
   */
  public static void lock(int fd, long start, long length, String subject) throws ErrnoException {
    call(fd, F_SETLKW, flock(F_WRLCK, start, length), subject);
  }

  public static void unlock(int fd, long start, long length, String subject) throws ErrnoException {
    call(fd, F_SETLK, flock(F_UNLCK, start, length), subject);
  }

  /** Whether another open file description holds a lock on part of the range. */
  public static boolean heldElsewhere(int fd, long start, long length, String subject)
      throws ErrnoException {
    ByteBuffer b = flock(F_WRLCK, start, length);
    call(fd, F_GETLK, b, subject);
    return b.getShort(0) != F_UNLCK;
  }
}

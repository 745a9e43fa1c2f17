package dev.lazypull.sys;

import com.sun.jna.Native;
import java.nio.ByteBuffer;

/**
 * Checked wrappers over fanotify_init(2) and fanotify_mark(2) ({@link FanotifyCalls}); every
 * failure is an {@link ErrnoException} naming the call and its subject. Values follow
 * include/uapi/linux/fanotify.h (6.14+). Reading events, answering them and closing the group are
 * plain read(2)/write(2)/close(2) ({@link Posix}).
 */
public final class Fanotify {
  // fanotify_init flags
  public static final int FAN_CLOEXEC = 0x1;
  public static final int FAN_NONBLOCK = 0x2;
  public static final int FAN_CLASS_NOTIF = 0x0;
  public static final int FAN_CLASS_CONTENT = 0x4;

  /**
   * Permission events before content is accessed; the only class that may ask for FAN_PRE_ACCESS.
   */
  public static final int FAN_CLASS_PRE_CONTENT = 0x8;

  /**
   * No limit on queued events. Without it the kernel drops a permission event that finds the queue
   * full ({@code /proc/sys/fs/fanotify/max_queued_events}, 16384 by default) and lets the access go
   * ahead unseen — a reader of a marked cache file would see its holes. Needs CAP_SYS_ADMIN.
   */
  public static final int FAN_UNLIMITED_QUEUE = 0x10;

  public static final int FAN_UNLIMITED_MARKS = 0x20;

  // fanotify_mark flags
  public static final int FAN_MARK_ADD = 0x1;
  public static final int FAN_MARK_REMOVE = 0x2;
  public static final int FAN_MARK_DONT_FOLLOW = 0x4;
  public static final int FAN_MARK_FLUSH = 0x80;

  /** Mark type (the default): the inode of the path. */
  public static final int FAN_MARK_INODE = 0x0;

  // event masks
  public static final long FAN_Q_OVERFLOW = 0x4000L;
  public static final long FAN_OPEN_PERM = 0x10000L;
  public static final long FAN_ACCESS_PERM = 0x20000L;
  public static final long FAN_OPEN_EXEC_PERM = 0x40000L;

  /**
   * Pre-content access to a file range (read, write, truncate, mmap), 6.14+: the event carries a
   * range record.
   */
  public static final long FAN_PRE_ACCESS = 0x100000L;

  /** Every event that waits for an answer. */
  public static final long PERMISSION_EVENTS =
      FAN_OPEN_PERM | FAN_ACCESS_PERM | FAN_OPEN_EXEC_PERM | FAN_PRE_ACCESS;

  /** dirfd meaning "relative to the working directory". */
  public static final int AT_FDCWD = -100;

  private Fanotify() {}

  /**
   * fanotify_init(2). {@code eventFFlags} are the open flags of the fd each event carries ({@link
   * Posix#O_RDWR} to write a range through it; {@link Posix#O_CLOEXEC}); O_LARGEFILE is implied on
   * 64-bit kernels.
   */
  public static int init(int flags, int eventFFlags) throws ErrnoException {
    int fd = FanotifyCalls.fanotify_init(flags, eventFFlags);
    if (fd < 0) {
      throw new ErrnoException(
          "fanotify_init", "flags 0x" + Integer.toHexString(flags), Native.getLastError());
    }
    return fd;
  }

  /**
   * fanotify_mark(2): {@code flags} is one of ADD/REMOVE/FLUSH plus modifiers; {@code path} is
   * resolved against {@code dirfd} ({@link #AT_FDCWD} for the working directory), or, when null,
   * {@code dirfd} itself is the object.
   */
  public static void mark(int group, int flags, long mask, int dirfd, String path)
      throws ErrnoException {
    if (FanotifyCalls.fanotify_mark(
            group, flags, mask, dirfd, path == null ? null : Posix.cString(path))
        != 0) {
      String what =
          path == null ? "fd " + dirfd : dirfd == AT_FDCWD ? path : "fd " + dirfd + "/" + path;
      throw new ErrnoException(
          "fanotify_mark",
          what + ", flags 0x" + Integer.toHexString(flags) + ", mask 0x" + Long.toHexString(mask),
          Native.getLastError());
    }
  }

  /** Adds {@code mask} to the inode mark of {@code path}. */
  public static void markAdd(int group, long mask, String path) throws ErrnoException {
    mark(group, FAN_MARK_ADD | FAN_MARK_INODE, mask, AT_FDCWD, path);
  }

  /**
   * Removes {@code mask} from the inode mark of {@code path} (ENOENT when it has no mark of this
   * group).
   */
  public static void markRemove(int group, long mask, String path) throws ErrnoException {
    mark(group, FAN_MARK_REMOVE | FAN_MARK_INODE, mask, AT_FDCWD, path);
  }

  /**
   * Writes one encoded {@code struct fanotify_response} (the buffer's remaining bytes) to the
   * group. Returns 0 when the kernel took it, else the errno (ENOENT: no event waits under that fd
   * number; EINVAL: a response this kernel refuses) — without an exception, so that sweeping many
   * fd numbers stays cheap.
   */
  public static int writeResponse(int group, ByteBuffer response) {
    while (true) {
      long n = FanotifyCalls.write(group, Posix.address(response), response.remaining());
      if (n == response.remaining()) {
        return 0;
      }
      if (n >= 0) {
        return Errno.EIO; // the kernel takes a response whole or not at all
      }
      int errno = Native.getLastError();
      if (errno != Errno.EINTR) {
        return errno;
      }
    }
  }

  /** Removes every inode mark of the group. */
  public static void flushInodeMarks(int group) throws ErrnoException {
    mark(group, FAN_MARK_FLUSH | FAN_MARK_INODE, 0, AT_FDCWD, null);
  }
}

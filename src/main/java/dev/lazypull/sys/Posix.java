package dev.lazypull.sys;

import com.sun.jna.Native;
import com.sun.jna.Pointer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Checked wrappers over {@link LibC}: every failure becomes an {@link ErrnoException} naming the
 * call and its subject. {@code EINTR} is retried where the call is restartable. Buffers must be
 * direct; I/O covers the buffer's remaining bytes and does not move its position (callers decide
 * what a short transfer means).
 */
public final class Posix {
  public static final int O_RDONLY = 0;
  public static final int O_WRONLY = 1;
  public static final int O_RDWR = 2;
  public static final int O_CREAT = 0100;
  public static final int O_EXCL = 0200;
  public static final int O_TRUNC = 01000;
  public static final int O_NONBLOCK = 04000;
  public static final int O_DIRECT = 040000;
  public static final int O_DIRECTORY = 0200000;
  public static final int O_CLOEXEC = 02000000;

  public static final int SEEK_SET = 0;
  public static final int SEEK_END = 2;
  public static final int SEEK_DATA = 3;
  public static final int SEEK_HOLE = 4;

  public static final short POLLIN = 0x1;
  public static final short POLLOUT = 0x4;
  public static final short POLLERR = 0x8;
  public static final short POLLHUP = 0x10;
  public static final short POLLNVAL = 0x20;

  public static final int F_GETFD = 1;
  public static final int F_SETFD = 2;
  public static final int FD_CLOEXEC = 1;

  public static final long MS_RDONLY = 1;
  public static final int MNT_DETACH = 2;

  public static final int AF_UNIX = 1;
  public static final int SOCK_STREAM = 1;
  public static final int SOCK_CLOEXEC = O_CLOEXEC;
  public static final int SHUT_RDWR = 2;

  public static final int LOCK_SH = 1;
  public static final int LOCK_EX = 2;
  public static final int LOCK_NB = 4;

  public static final int FALLOC_FL_KEEP_SIZE = 1;
  public static final int FALLOC_FL_PUNCH_HOLE = 2;

  private Posix() {}

  /**
   * NUL-terminated UTF-8 (JNA's String conversion would follow the platform charset, which may be
   * ASCII).
   */
  public static byte[] cString(String s) {
    byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
    for (byte b : utf8) {
      if (b == 0) {
        throw new IllegalArgumentException("string contains a NUL byte: " + s);
      }
    }
    byte[] out = new byte[utf8.length + 1];
    System.arraycopy(utf8, 0, out, 0, utf8.length);
    return out;
  }

  private static byte[] cStringOrNull(String s) {
    return s == null ? null : cString(s);
  }

  /** Address of {@code buf}'s current position. */
  public static long address(ByteBuffer buf) {
    if (!buf.isDirect()) {
      throw new IllegalArgumentException("native I/O needs a direct buffer");
    }
    return Pointer.nativeValue(Native.getDirectBufferPointer(buf)) + buf.position();
  }

  private static ErrnoException fail(String call, String subject) {
    return new ErrnoException(call, subject, Native.getLastError());
  }

  public static int open(String path, int flags, int mode) throws ErrnoException {
    byte[] p = cString(path);
    while (true) {
      int fd = LibC.open(p, flags, mode);
      if (fd >= 0) {
        return fd;
      }
      int errno = Native.getLastError();
      if (errno != Errno.EINTR) {
        throw new ErrnoException("open", path, errno);
      }
    }
  }

  /**
   * Closes {@code fd}; errors are reported but the descriptor is gone either way (Linux semantics).
   */
  public static void close(int fd) throws ErrnoException {
    if (LibC.close(fd) != 0) {
      int errno = Native.getLastError();
      if (errno != Errno.EINTR) {
        throw new ErrnoException("close", "fd " + fd, errno);
      }
    }
  }

  /**
   * Closes {@code fd}, ignoring errors: for cleanup paths that already have a failure to report.
   */
  public static void closeQuietly(int fd) {
    if (fd >= 0) {
      LibC.close(fd);
    }
  }

  /**
   * read(2) into buf's remaining space; returns the byte count, 0 at end or when nothing is
   * pending.
   */
  public static int read(int fd, ByteBuffer buf) throws ErrnoException {
    while (true) {
      long n = LibC.read(fd, address(buf), buf.remaining());
      if (n >= 0) {
        return (int) n;
      }
      int errno = Native.getLastError();
      if (errno == Errno.EAGAIN) {
        return 0;
      }
      if (errno != Errno.EINTR) {
        throw new ErrnoException("read", "fd " + fd, errno);
      }
    }
  }

  /** write(2) of buf's remaining bytes in one call; returns what the kernel accepted. */
  public static long write(int fd, ByteBuffer buf) throws ErrnoException {
    while (true) {
      long n = LibC.write(fd, address(buf), buf.remaining());
      if (n >= 0) {
        return n;
      }
      int errno = Native.getLastError();
      if (errno != Errno.EINTR) {
        throw new ErrnoException("write", "fd " + fd, errno);
      }
    }
  }

  public static long pread(int fd, ByteBuffer buf, long offset) throws ErrnoException {
    while (true) {
      long n = LibC.pread(fd, address(buf), buf.remaining(), offset);
      if (n >= 0) {
        return n;
      }
      int errno = Native.getLastError();
      if (errno != Errno.EINTR) {
        throw new ErrnoException("pread", "fd " + fd + " at " + offset, errno);
      }
    }
  }

  public static long pwrite(int fd, ByteBuffer buf, long offset) throws ErrnoException {
    while (true) {
      long n = LibC.pwrite(fd, address(buf), buf.remaining(), offset);
      if (n >= 0) {
        return n;
      }
      int errno = Native.getLastError();
      if (errno != Errno.EINTR) {
        throw new ErrnoException("pwrite", "fd " + fd + " at " + offset, errno);
      }
    }
  }

  /**
   * lseek(2); for SEEK_DATA/SEEK_HOLE returns -1 instead of throwing on ENXIO ("no data/hole at or
   * after offset"), which is an answer, not an error.
   */
  public static long lseek(int fd, long offset, int whence) throws ErrnoException {
    long r = LibC.lseek(fd, offset, whence);
    if (r >= 0) {
      return r;
    }
    int errno = Native.getLastError();
    if (errno == Errno.ENXIO && (whence == SEEK_DATA || whence == SEEK_HOLE)) {
      return -1;
    }
    throw new ErrnoException("lseek", "fd " + fd + " at " + offset + " whence " + whence, errno);
  }

  public static void ioctl(int fd, long request, long arg) throws ErrnoException {
    while (true) {
      if (LibC.ioctl(fd, request, arg) >= 0) {
        return;
      }
      int errno = Native.getLastError();
      if (errno != Errno.EINTR) {
        throw new ErrnoException(
            "ioctl", "fd " + fd + " request 0x" + Long.toHexString(request), errno);
      }
    }
  }

  /** Marks fd close-on-exec: fds the kernel installs (cachefiles anon fds) come without it. */
  public static void setCloseOnExec(int fd) throws ErrnoException {
    int flags = LibC.fcntl(fd, F_GETFD, 0);
    if (flags < 0 || LibC.fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
      throw fail("fcntl", "fd " + fd);
    }
  }

  public static void fsync(int fd) throws ErrnoException {
    if (LibC.fsync(fd) != 0) {
      throw fail("fsync", "fd " + fd);
    }
  }

  /** fdatasync(2): the file's data, and the metadata needed to read it back, reach the disk. */
  public static void fdatasync(int fd) throws ErrnoException {
    if (LibC.fdatasync(fd) != 0) {
      throw fail("fdatasync", "fd " + fd);
    }
  }

  /** fsync(2) of a directory: the names created, renamed or removed in it reach the disk. */
  public static void fsyncDirectory(String path) throws ErrnoException {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    try {
      if (LibC.fsync(fd) != 0) {
        throw fail("fsync", path);
      }
    } finally {
      closeQuietly(fd);
    }
  }

  public static void ftruncate(int fd, long length) throws ErrnoException {
    if (LibC.ftruncate(fd, length) != 0) {
      throw fail("ftruncate", "fd " + fd);
    }
  }

  public static void fallocate(int fd, int mode, long offset, long length) throws ErrnoException {
    if (LibC.fallocate(fd, mode, offset, length) != 0) {
      throw fail("fallocate", "fd " + fd);
    }
  }

  /**
   * poll(2) on one fd. Returns the revents, 0 on timeout (or EINTR, which callers treat like a
   * timeout).
   */
  public static int pollOne(int fd, short events, int timeoutMillis, ByteBuffer pollfdScratch)
      throws ErrnoException {
    ByteBuffer p = pollfdScratch.order(ByteOrder.nativeOrder());
    p.clear();
    p.putInt(0, fd).putShort(4, events).putShort(6, (short) 0);
    int r = LibC.poll(address(p), 1, timeoutMillis);
    if (r < 0) {
      int errno = Native.getLastError();
      if (errno == Errno.EINTR) {
        return 0;
      }
      throw new ErrnoException("poll", "fd " + fd, errno);
    }
    return r == 0 ? 0 : p.getShort(6) & 0xffff;
  }

  public static void mount(String source, String target, String fstype, long flags, String data)
      throws ErrnoException {
    if (LibC.mount(
            cStringOrNull(source),
            cString(target),
            cStringOrNull(fstype),
            flags,
            cStringOrNull(data))
        != 0) {
      throw fail("mount", fstype + " on " + target);
    }
  }

  public static void umount2(String target, int flags) throws ErrnoException {
    if (LibC.umount2(cString(target), flags) != 0) {
      throw fail("umount", target);
    }
  }

  public static void chdir(String path) throws ErrnoException {
    if (LibC.chdir(cString(path)) != 0) {
      throw fail("chdir", path);
    }
  }

  /** statfs(2) f_type of the filesystem holding {@code path} (e.g. {@link #TMPFS_MAGIC}). */
  public static long filesystemType(String path) throws ErrnoException {
    ByteBuffer st = ByteBuffer.allocateDirect(256).order(ByteOrder.nativeOrder());
    if (LibC.statfs(cString(path), address(st)) != 0) {
      throw fail("statfs", path);
    }
    return st.getLong(0); // struct statfs: __fsword_t f_type first on 64-bit Linux
  }

  /**
   * Bytes a file actually occupies on disk (st_blocks × 512; sparse holes cost nothing), without
   * following a final symlink. st_blocks sits at offset 64 of struct stat on both x86-64 and
   * aarch64.
   */
  public static long allocatedBytes(String path) throws ErrnoException {
    ByteBuffer st = ByteBuffer.allocateDirect(256).order(ByteOrder.nativeOrder());
    if (LibC.lstat(cString(path), address(st)) != 0) {
      throw fail("lstat", path);
    }
    return st.getLong(64) * 512;
  }

  public static final long TMPFS_MAGIC = 0x01021994L;
  public static final long RAMFS_MAGIC = 0x858458f6L;
  public static final long OVERLAYFS_MAGIC = 0x794c7630L;
  public static final long NFS_MAGIC = 0x6969L;

  /** A connected pair of unix stream sockets, close-on-exec: {fd0, fd1}. */
  public static int[] socketpair() throws ErrnoException {
    int[] fds = new int[2];
    if (LibC.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      throw fail("socketpair", "AF_UNIX");
    }
    return fds;
  }

  /**
   * shutdown(2) both directions: wakes a thread blocked reading the socket (close(2) alone does not
   * on Linux). Errors are ignored: the socket may already be disconnected.
   */
  public static void shutdownQuietly(int fd) {
    if (fd >= 0) {
      LibC.shutdown(fd, SHUT_RDWR);
    }
  }

  /**
   * Takes an exclusive, non-blocking flock(2) on {@code fd}; false if another open file description
   * holds it. The lock goes with the descriptor's last close.
   */
  public static boolean tryLockExclusive(int fd, String subject) throws ErrnoException {
    while (true) {
      if (LibC.flock(fd, LOCK_EX | LOCK_NB) == 0) {
        return true;
      }
      int errno = Native.getLastError();
      if (errno == Errno.EAGAIN) {
        return false;
      }
      if (errno != Errno.EINTR) {
        throw new ErrnoException("flock", subject, errno);
      }
    }
  }

  /**
   * Takes a shared, non-blocking flock(2) on {@code fd}; false if another open file description
   * holds it exclusively. The lock goes with the descriptor's last close.
   */
  public static boolean tryLockShared(int fd, String subject) throws ErrnoException {
    while (true) {
      if (LibC.flock(fd, LOCK_SH | LOCK_NB) == 0) {
        return true;
      }
      int errno = Native.getLastError();
      if (errno == Errno.EAGAIN) {
        return false;
      }
      if (errno != Errno.EINTR) {
        throw new ErrnoException("flock", subject, errno);
      }
    }
  }

  /**
   * fcntl(2) with a pointer argument (record locks); the raw return value, errno left for the
   * caller.
   */
  static int fcntlPointer(int fd, int cmd, long arg) {
    return LibC.fcntl(fd, cmd, arg);
  }

  public static int geteuid() {
    return LibC.geteuid();
  }

  public static int getpid() {
    return LibC.getpid();
  }
}

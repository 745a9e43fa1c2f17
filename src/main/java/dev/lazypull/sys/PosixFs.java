package dev.lazypull.sys;

import com.sun.jna.Native;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Byte-exact file-tree calls: paths are raw bytes (no charset round trip), nothing follows a final
 * symlink. Every failure is an {@link ErrnoException} naming the call and the path (shown as UTF-8
 * with invalid bytes replaced, for messages only).
 */
public final class PosixFs {
  private static final int AT_FDCWD = -100;
  private static final int AT_SYMLINK_NOFOLLOW = 0x100;
  private static final int AT_EMPTY_PATH = 0x1000;
  private static final byte[] EMPTY = {0};
  private static final int STATX_BASIC_STATS = 0x7ff;

  /** Linux limits: XATTR_LIST_MAX and XATTR_SIZE_MAX. */
  private static final int XATTR_LIST_MAX = 65536;

  private static final int XATTR_SIZE_MAX = 65536;
  private static final int PATH_MAX = 4096;
  private static final int O_NOFOLLOW = 0400000;

  private static final ThreadLocal<ByteBuffer> SCRATCH =
      ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(XATTR_LIST_MAX + 16));

  private PosixFs() {}

  /** The path for messages. */
  public static String show(byte[] path) {
    return new String(path, StandardCharsets.UTF_8);
  }

  static byte[] cPath(byte[] path) {
    for (byte b : path) {
      if (b == 0) {
        throw new IllegalArgumentException("path contains a NUL byte: " + show(path));
      }
    }
    byte[] out = new byte[path.length + 1];
    System.arraycopy(path, 0, out, 0, path.length);
    return out;
  }

  private static ErrnoException fail(String call, byte[] path) {
    return new ErrnoException(call, show(path), Native.getLastError());
  }

  /** lstat-like: statx without following a final symlink. */
  public static StatX lstat(byte[] path) throws ErrnoException {
    ByteBuffer buf = SCRATCH.get().clear();
    if (FsCalls.statx(
            AT_FDCWD, cPath(path), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, Posix.address(buf))
        != 0) {
      throw fail("statx", path);
    }
    return StatX.decode(buf);
  }

  /** statx of an open descriptor (the file itself: no path lookup). */
  public static StatX fstat(int fd) throws ErrnoException {
    ByteBuffer buf = SCRATCH.get().clear();
    if (FsCalls.statx(fd, EMPTY, AT_EMPTY_PATH, STATX_BASIC_STATS, Posix.address(buf)) != 0) {
      throw new ErrnoException("statx", "fd " + fd, Native.getLastError());
    }
    return StatX.decode(buf);
  }

  /**
   * Opens for reading, never following a final symlink; {@code extraFlags} e.g. {@link
   * Posix#O_DIRECTORY}.
   */
  public static int openRead(byte[] path, int extraFlags) throws ErrnoException {
    byte[] p = cPath(path);
    while (true) {
      int fd = LibC.open(p, Posix.O_RDONLY | Posix.O_CLOEXEC | O_NOFOLLOW | extraFlags, 0);
      if (fd >= 0) {
        return fd;
      }
      int errno = Native.getLastError();
      if (errno != Errno.EINTR) {
        throw new ErrnoException("open", show(path), errno);
      }
    }
  }

  /** Names in a directory (without "." and ".."), in the order the file system returns them. */
  public static List<byte[]> listDirectory(byte[] path) throws ErrnoException {
    int fd = openRead(path, Posix.O_DIRECTORY);
    try {
      List<byte[]> names = new ArrayList<>();
      ByteBuffer buf = ByteBuffer.allocateDirect(64 << 10);
      while (true) {
        long n = FsCalls.getdents64(fd, Posix.address(buf.clear()), buf.capacity());
        if (n < 0) {
          int errno = Native.getLastError();
          if (errno == Errno.EINTR) {
            continue;
          }
          throw new ErrnoException("getdents64", show(path), errno);
        }
        if (n == 0) {
          return names;
        }
        Dirents.decode(buf, (int) n, names);
      }
    } finally {
      Posix.closeQuietly(fd);
    }
  }

  /** The raw target of a symlink. */
  public static byte[] readlink(byte[] path) throws ErrnoException {
    ByteBuffer buf = SCRATCH.get().clear();
    long n = FsCalls.readlink(cPath(path), Posix.address(buf), PATH_MAX);
    if (n < 0) {
      throw fail("readlink", path);
    }
    if (n >= PATH_MAX) {
      throw new ErrnoException("readlink", show(path), Errno.ENAMETOOLONG);
    }
    byte[] out = new byte[(int) n];
    buf.get(0, out);
    return out;
  }

  /**
   * Every extended attribute of a file (not following a final symlink), name → value, in listing
   * order.
   */
  public static Map<String, byte[]> xattrs(byte[] path) throws ErrnoException {
    byte[] p = cPath(path);
    ByteBuffer buf = SCRATCH.get().clear();
    long n = FsCalls.llistxattr(p, Posix.address(buf), XATTR_LIST_MAX);
    if (n < 0) {
      int errno = Native.getLastError();
      if (errno == Errno.EOPNOTSUPP) {
        return Map.of();
      }
      throw new ErrnoException("llistxattr", show(path), errno);
    }
    byte[] list = new byte[(int) n];
    buf.get(0, list);
    Map<String, byte[]> out = new LinkedHashMap<>();
    int start = 0;
    for (int i = 0; i < list.length; i++) {
      if (list[i] == 0) {
        if (i > start) {
          byte[] name = new byte[i - start + 1];
          System.arraycopy(list, start, name, 0, i - start);
          long len = FsCalls.lgetxattr(p, name, Posix.address(buf.clear()), XATTR_SIZE_MAX);
          String key = utf8(name, name.length - 1, path);
          if (len < 0) {
            int errno = Native.getLastError();
            if (errno == Errno.ENODATA) {
              continue; // removed between list and get
            }
            throw new ErrnoException("lgetxattr", show(path) + " " + key, errno);
          }
          byte[] value = new byte[(int) len];
          buf.get(0, value);
          out.put(key, value);
        }
        start = i + 1;
      }
    }
    return out;
  }

  /**
   * Xattr names are kept as Strings: refuse the (rare) ones that are not UTF-8 rather than alter
   * them.
   */
  private static String utf8(byte[] b, int len, byte[] path) throws ErrnoException {
    try {
      return StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(b, 0, len)).toString();
    } catch (CharacterCodingException e) {
      throw new ErrnoException(
          "llistxattr", show(path) + ": an xattr name that is not UTF-8", Errno.EINVAL);
    }
  }

  /** getdents64 records: {u64 ino, s64 off, u16 reclen, u8 type, char name[]}. */
  static final class Dirents {
    private Dirents() {}

    static void decode(ByteBuffer raw, int length, List<byte[]> names) {
      ByteBuffer b = raw.duplicate().order(ByteOrder.nativeOrder());
      int pos = 0;
      while (pos + 19 <= length) {
        int reclen = b.getShort(pos + 16) & 0xffff;
        if (reclen < 20 || pos + reclen > length) {
          throw new IllegalStateException("getdents64 returned a malformed record at " + pos);
        }
        int nameStart = pos + 19;
        int end = nameStart;
        while (end < pos + reclen && b.get(end) != 0) {
          end++;
        }
        byte[] name = new byte[end - nameStart];
        b.get(nameStart, name);
        boolean dot = name.length == 1 && name[0] == '.';
        boolean dotdot = name.length == 2 && name[0] == '.' && name[1] == '.';
        if (!dot && !dotdot) {
          names.add(name);
        }
        pos += reclen;
      }
    }
  }
}

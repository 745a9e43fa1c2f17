package dev.lazypull.sys;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * What {@code statx(2)} says about one file (not following a final symlink). The struct statx
 * layout is the same on every Linux architecture, unlike struct stat.
 */
public record StatX(
    int mode,
    long uid,
    long gid,
    long nlink,
    long ino,
    long devMajor,
    long devMinor,
    long size,
    long mtimeSec,
    int mtimeNsec,
    long rdevMajor,
    long rdevMinor) {
  public static final int S_IFMT = 0170000;
  public static final int S_IFSOCK = 0140000;
  public static final int S_IFLNK = 0120000;
  public static final int S_IFREG = 0100000;
  public static final int S_IFBLK = 0060000;
  public static final int S_IFDIR = 0040000;
  public static final int S_IFCHR = 0020000;
  public static final int S_IFIFO = 0010000;

  /** Decodes a struct statx (native byte order). */
  static StatX decode(ByteBuffer raw) {
    ByteBuffer b = raw.duplicate().order(ByteOrder.nativeOrder());
    return new StatX(
        b.getShort(0x1c) & 0xffff,
        Integer.toUnsignedLong(b.getInt(0x14)),
        Integer.toUnsignedLong(b.getInt(0x18)),
        Integer.toUnsignedLong(b.getInt(0x10)),
        b.getLong(0x20),
        Integer.toUnsignedLong(b.getInt(0x88)),
        Integer.toUnsignedLong(b.getInt(0x8c)),
        b.getLong(0x28),
        b.getLong(0x70),
        b.getInt(0x78),
        Integer.toUnsignedLong(b.getInt(0x80)),
        Integer.toUnsignedLong(b.getInt(0x84)));
  }

  public int type() {
    return mode & S_IFMT;
  }

  public boolean isDirectory() {
    return type() == S_IFDIR;
  }

  public boolean isRegular() {
    return type() == S_IFREG;
  }

  public boolean isSymlink() {
    return type() == S_IFLNK;
  }
}

package dev.lazypull.erofs;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One on-disk EROFS inode, compact (32 bytes) or extended (64 bytes); see erofs-format §3. Compact
 * inodes carry no timestamp (the superblock's build time applies) and 16-bit uid/gid/nlink and a
 * 32-bit size.
 *
 * @param layout the data layout (bits 1-3 of i_format): {@link #FLAT_PLAIN}, {@link #FLAT_INLINE},
 *     {@link #CHUNK_BASED} (compressed layouts are decoded but lazypull does not read their data)
 * @param xattrIcount i_xattr_icount: 0, or (inline xattr area size - 12) / 4 + 1
 * @param mode the full st_mode (type and permission bits)
 * @param iu the i_u union: raw_blkaddr, rdev, or the chunk format
 */
public record InodeRecord(
    boolean extended,
    int layout,
    int xattrIcount,
    int mode,
    long nlink,
    long size,
    int iu,
    long ino,
    long uid,
    long gid,
    long mtime,
    int mtimeNsec) {
  public static final int COMPACT_SIZE = 32;
  public static final int EXTENDED_SIZE = 64;
  public static final int FLAT_PLAIN = 0;
  public static final int COMPRESSED_FULL = 1;
  public static final int FLAT_INLINE = 2;
  public static final int COMPRESSED_COMPACT = 3;
  public static final int CHUNK_BASED = 4;

  /** i_u for FLAT_INLINE with no full blocks (mkfs writes this too). */
  public static final int NULL_ADDR = 0xFFFFFFFF;

  /** Chunk format bit: 8-byte chunk indexes (device id + block) instead of a 4-byte block map. */
  public static final int CHUNK_FORMAT_INDEXES = 0x20;

  public static final int CHUNK_FORMAT_BLKBITS_MASK = 0x1F;

  /** The on-disk inode size: 32 or 64 bytes. */
  public int inodeSize() {
    return extended ? EXTENDED_SIZE : COMPACT_SIZE;
  }

  /** Size of the inline xattr area that follows the inode. */
  public int xattrSize() {
    return xattrIcount == 0 ? 0 : 12 + 4 * (xattrIcount - 1);
  }

  public FileType type() {
    return FileType.ofMode(mode);
  }

  /** Writes the inode at {@code offset}; every reserved byte zero. */
  public void encode(ByteBuffer buf, int offset) {
    ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < inodeSize(); i++) {
      b.put(offset + i, (byte) 0);
    }
    b.putShort(offset, (short) ((extended ? 1 : 0) | (layout << 1)));
    b.putShort(offset + 2, (short) xattrIcount);
    b.putShort(offset + 4, (short) mode);
    b.putInt(offset + 16, iu);
    b.putInt(offset + 20, (int) ino);
    if (extended) {
      b.putLong(offset + 8, size);
      b.putInt(offset + 24, (int) uid);
      b.putInt(offset + 28, (int) gid);
      b.putLong(offset + 32, mtime);
      b.putInt(offset + 40, mtimeNsec);
      b.putInt(offset + 44, (int) nlink);
    } else {
      checkCompact();
      b.putShort(offset + 6, (short) nlink);
      b.putInt(offset + 8, (int) size);
      b.putShort(offset + 24, (short) uid);
      b.putShort(offset + 26, (short) gid);
    }
  }

  private void checkCompact() {
    if (size > 0xFFFFFFFFL || uid > 0xFFFF || gid > 0xFFFF || nlink > 0xFFFF) {
      throw new IllegalStateException("inode does not fit the compact format: " + this);
    }
  }

  /**
   * Decodes the inode at {@code offset}. {@code buf} must hold 64 bytes from offset for an extended
   * inode; the caller checks that (it knows the image length). Compact inodes get {@code buildTime}
   * as their mtime.
   */
  public static InodeRecord decode(ByteBuffer buf, int offset, long buildTime, int buildTimeNsec)
      throws ErofsFormatException {
    ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int format = b.getShort(offset) & 0xffff;
    if ((format & ~0xF) != 0) {
      throw new ErofsFormatException(String.format("unsupported i_format 0x%x", format));
    }
    boolean ext = (format & 1) != 0;
    int layout = (format >> 1) & 0x7;
    if (layout > CHUNK_BASED) {
      throw new ErofsFormatException("unknown data layout " + layout);
    }
    if (ext && b.limit() - offset < EXTENDED_SIZE) {
      throw new ErofsFormatException("extended inode truncated");
    }
    int icount = b.getShort(offset + 2) & 0xffff;
    int mode = b.getShort(offset + 4) & 0xffff;
    int iu = b.getInt(offset + 16);
    long ino = Integer.toUnsignedLong(b.getInt(offset + 20));
    if (ext) {
      return new InodeRecord(
          true,
          layout,
          icount,
          mode,
          Integer.toUnsignedLong(b.getInt(offset + 44)),
          b.getLong(offset + 8),
          iu,
          ino,
          Integer.toUnsignedLong(b.getInt(offset + 24)),
          Integer.toUnsignedLong(b.getInt(offset + 28)),
          b.getLong(offset + 32),
          b.getInt(offset + 40));
    }
    return new InodeRecord(
        false,
        layout,
        icount,
        mode,
        b.getShort(offset + 6) & 0xffff,
        Integer.toUnsignedLong(b.getInt(offset + 8)),
        iu,
        ino,
        b.getShort(offset + 24) & 0xffff,
        b.getShort(offset + 26) & 0xffff,
        buildTime,
        buildTimeNsec);
  }

  /** Linux new_encode_dev: the rdev of a device inode. */
  public static int encodeDev(long major, long minor) {
    return (int) ((minor & 0xff) | (major << 8) | ((minor & ~0xffL) << 12));
  }

  public static long devMajor(int rdev) {
    return (Integer.toUnsignedLong(rdev) & 0xfff00) >> 8;
  }

  public static long devMinor(int rdev) {
    long r = Integer.toUnsignedLong(rdev);
    return (r & 0xff) | ((r >> 12) & 0xfff00);
  }
}

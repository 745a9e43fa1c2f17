package dev.lazypull.erofs;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * The EROFS superblock (128 bytes at byte 1024, little-endian); see fs/erofs/erofs_fs.h. Only what
 * lazypull needs to read and write uncompressed, chunk-based, multi-device images.
 */
public record Superblock(
    int checksum,
    int featureCompat,
    int blkszbits,
    int rootNid,
    long inodes,
    long buildTime,
    int buildTimeNsec,
    long blocks,
    long metaBlkaddr,
    long xattrBlkaddr,
    int featureIncompat,
    int extraDevices,
    int devtSlotoff) {

  public static final int OFFSET = 1024;
  public static final int SIZE = 128;
  public static final int MAGIC = 0xE0F5E1E2;
  public static final int COMPAT_SB_CHKSUM = 0x1;
  public static final int COMPAT_MTIME = 0x2;
  public static final int INCOMPAT_CHUNKED_FILE = 0x4;
  public static final int INCOMPAT_DEVICE_TABLE = 0x8;

  /**
   * Reads the superblock from the first block of an image; {@code block0} must hold at least 1152
   * bytes.
   */
  public static Superblock decode(ByteBuffer block0) throws ErofsFormatException {
    ByteBuffer b = block0.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int base = b.position() + OFFSET;
    if (b.limit() - base < SIZE) {
      throw new ErofsFormatException(
          "image too short for a superblock (" + (b.remaining()) + " bytes)");
    }
    int magic = b.getInt(base);
    if (magic != MAGIC) {
      throw new ErofsFormatException(String.format("bad EROFS magic 0x%08x at offset 1024", magic));
    }
    int blkszbits = b.get(base + 12) & 0xff;
    Superblock sb =
        new Superblock(
            b.getInt(base + 4),
            b.getInt(base + 8),
            blkszbits,
            b.getShort(base + 14) & 0xffff,
            b.getLong(base + 16),
            b.getLong(base + 24),
            b.getInt(base + 32),
            Integer.toUnsignedLong(b.getInt(base + 36)),
            Integer.toUnsignedLong(b.getInt(base + 40)),
            Integer.toUnsignedLong(b.getInt(base + 44)),
            b.getInt(base + 80),
            b.getShort(base + 86) & 0xffff,
            b.getShort(base + 88) & 0xffff);
    if (blkszbits < 9 || blkszbits > 16) {
      throw new ErofsFormatException("unsupported EROFS block size 2^" + blkszbits);
    }
    return sb;
  }

  /**
   * A superblock for a new image (feature bits, counts and addresses as given; checksum filled in
   * later).
   */
  public static Superblock forImage(
      int featureCompat,
      int blkszbits,
      int rootNid,
      long inodes,
      long buildTime,
      int buildTimeNsec,
      long blocks,
      int featureIncompat,
      int extraDevices,
      int devtSlotoff) {
    return new Superblock(
        0,
        featureCompat,
        blkszbits,
        rootNid,
        inodes,
        buildTime,
        buildTimeNsec,
        blocks,
        0,
        0,
        featureIncompat,
        extraDevices,
        devtSlotoff);
  }

  /**
   * Writes these fields at byte 1024 of {@code block0} (the 128 superblock bytes are rewritten
   * whole: every reserved byte zero, uuid and volume name zero). The checksum field is written as
   * is: compute it last with {@link #computeChecksum} once block 0 is final.
   */
  public void encode(ByteBuffer block0) {
    ByteBuffer b = block0.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int base = b.position() + OFFSET;
    for (int i = 0; i < SIZE; i++) {
      b.put(base + i, (byte) 0);
    }
    b.putInt(base, MAGIC);
    b.putInt(base + 4, checksum);
    b.putInt(base + 8, featureCompat);
    b.put(base + 12, (byte) blkszbits);
    b.putShort(base + 14, (short) rootNid);
    b.putLong(base + 16, inodes);
    b.putLong(base + 24, buildTime);
    b.putInt(base + 32, buildTimeNsec);
    b.putInt(base + 36, (int) blocks);
    b.putInt(base + 40, (int) metaBlkaddr);
    b.putInt(base + 44, (int) xattrBlkaddr);
    b.putInt(base + 80, featureIncompat);
    b.putShort(base + 86, (short) extraDevices);
    b.putShort(base + 88, (short) devtSlotoff);
  }

  public int blockSize() {
    return 1 << blkszbits;
  }

  /** Number of device slots the kernel will read: 0 unless INCOMPAT_DEVICE_TABLE is set. */
  public int deviceCount() {
    return (featureIncompat & INCOMPAT_DEVICE_TABLE) != 0 ? extraDevices : 0;
  }

  /** Absolute byte offset of the device table. */
  public long deviceTableOffset() {
    return (long) devtSlotoff * DeviceSlot.SIZE;
  }

  /**
   * Verifies the checksum when the image claims one: {@code ~crc32c(~0, bytes[1024, blksz))} with
   * the checksum field zeroed. {@code block0} must hold the whole first block.
   */
  public void verifyChecksum(ByteBuffer block0) throws ErofsFormatException {
    if ((featureCompat & COMPAT_SB_CHKSUM) == 0) {
      return;
    }
    int computed = computeChecksum(block0, blockSize());
    if (computed != checksum) {
      throw new ErofsFormatException(
          String.format(
              "superblock checksum 0x%08x does not match computed 0x%08x", checksum, computed));
    }
  }

  /** The superblock checksum of {@code block0} (the field itself is treated as zero). */
  public static int computeChecksum(ByteBuffer block0, int blockSize) throws ErofsFormatException {
    int len = blockSize > OFFSET ? blockSize - OFFSET : blockSize;
    ByteBuffer b = block0.duplicate();
    if (b.remaining() < OFFSET + len) {
      throw new ErofsFormatException("first block truncated: " + b.remaining() + " bytes");
    }
    byte[] bytes = new byte[len];
    b.position(b.position() + OFFSET);
    b.get(bytes);
    bytes[4] = bytes[5] = bytes[6] = bytes[7] = 0;
    CRC32C crc = new CRC32C();
    crc.update(bytes);
    return (int) ~crc.getValue();
  }
}

package dev.lazypull.image;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.roaringbitmap.RoaringBitmap;

/**
 * The block map of a snapshot diff ({@link MediaTypes#DISK_DIFF_MAP}): which blocks the diff's data
 * holds — packed in block order, so block b is at data offset (rank(b) − 1) × block size — and
 * which blocks it zeroes. Blocks in neither read as the layer below. Both sets are roaring bitmaps
 * in the portable serialization (readable by the C, Go and Rust implementations); all integers
 * little-endian; the layer's digest covers the bytes:
 *
 * <pre>
 *   0  8  magic "LPDIFFM1"
 *   8  4  version (1)
 *  12  4  block size (a power of two, 512 to 64 KiB)
 *  16  8  device size in bytes
 *  24  8  data block count (= the data bitmap's cardinality)
 *  32  4  data bitmap length D
 *  36  4  zero bitmap length Z
 *  40  D  data bitmap
 *  40+D Z zero bitmap
 * </pre>
 *
 * @param data blocks whose bytes the diff holds
 * @param zero blocks the diff makes zero (disjoint from {@code data})
 */
public record BlockMap(int blockSize, long size, RoaringBitmap data, RoaringBitmap zero) {
  static final byte[] MAGIC = "LPDIFFM1".getBytes(StandardCharsets.US_ASCII);
  static final int VERSION = 1;
  static final int HEADER = 40;

  /** Largest map read: 64 MiB holds far more than any real diff's bitmaps. */
  public static final long MAX_BYTES = 64L << 20;

  public BlockMap {
    if (blockSize < 512
        || blockSize > (64 << 10)
        || Integer.bitCount(blockSize) != 1
        || size < 0
        || blocks(size, blockSize) > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "block map: block size " + blockSize + ", device size " + size);
    }
  }

  static long blocks(long size, int blockSize) {
    return (size + blockSize - 1) / blockSize;
  }

  /** Blocks of the device (the last may be short). */
  public long blocks() {
    return blocks(size, blockSize);
  }

  /** Bytes of the packed data the map describes: data blocks × block size. */
  public long dataBytes() {
    return data.getLongCardinality() * blockSize;
  }

  public byte[] encode() {
    data.runOptimize();
    zero.runOptimize();
    int d = data.serializedSizeInBytes();
    int z = zero.serializedSizeInBytes();
    ByteBuffer b = ByteBuffer.allocate(HEADER + d + z).order(ByteOrder.LITTLE_ENDIAN);
    b.put(MAGIC)
        .putInt(VERSION)
        .putInt(blockSize)
        .putLong(size)
        .putLong(data.getLongCardinality())
        .putInt(d)
        .putInt(z);
    data.serialize(b);
    zero.serialize(b);
    return b.array();
  }

  /**
   * Decodes a map.
   *
   * @throws IOException naming what is wrong: magic, version, sizes, lengths, bitmaps that do not
   *     decode, blocks past the device, overlapping sets, a count that does not match
   */
  public static BlockMap decode(byte[] bytes) throws IOException {
    if (bytes.length < HEADER || bytes.length > MAX_BYTES) {
      throw new IOException("block map of " + bytes.length + " bytes");
    }
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    if (!Arrays.equals(Arrays.copyOf(bytes, 8), MAGIC)) {
      throw new IOException("block map: bad magic");
    }
    int version = b.getInt(8);
    int blockSize = b.getInt(12);
    long size = b.getLong(16);
    long count = b.getLong(24);
    long d = Integer.toUnsignedLong(b.getInt(32));
    long z = Integer.toUnsignedLong(b.getInt(36));
    if (version != VERSION) {
      throw new IOException("block map version " + version + ", expected " + VERSION);
    }
    if (blockSize < 512
        || blockSize > (64 << 10)
        || Integer.bitCount(blockSize) != 1
        || size < 0
        || blocks(size, blockSize) > Integer.MAX_VALUE) {
      throw new IOException("block map: block size " + blockSize + ", device size " + size);
    }
    if (HEADER + d + z != bytes.length) {
      throw new IOException(
          "block map: bitmap lengths "
              + d
              + " + "
              + z
              + " do not fill its "
              + bytes.length
              + " bytes");
    }
    RoaringBitmap data = bitmap(bytes, HEADER, (int) d, "data");
    RoaringBitmap zero = bitmap(bytes, HEADER + (int) d, (int) z, "zero");
    long blocks = blocks(size, blockSize);
    if (!data.isEmpty() && Integer.toUnsignedLong(data.last()) >= blocks
        || !zero.isEmpty() && Integer.toUnsignedLong(zero.last()) >= blocks) {
      throw new IOException("block map names blocks past the device's " + blocks);
    }
    if (RoaringBitmap.intersects(data, zero)) {
      throw new IOException("block map: blocks both in the data and zeroed");
    }
    if (data.getLongCardinality() != count) {
      throw new IOException(
          "block map: " + data.getLongCardinality() + " data blocks, the header says " + count);
    }
    return new BlockMap(blockSize, size, data, zero);
  }

  private static RoaringBitmap bitmap(byte[] bytes, int at, int length, String what)
      throws IOException {
    RoaringBitmap r = new RoaringBitmap();
    try {
      r.deserialize(ByteBuffer.wrap(bytes, at, length).slice().order(ByteOrder.LITTLE_ENDIAN));
    } catch (IOException | RuntimeException e) {
      throw new IOException("block map: the " + what + " bitmap does not decode: " + e);
    }
    if (r.serializedSizeInBytes() != length) {
      throw new IOException(
          "block map: the "
              + what
              + " bitmap takes "
              + r.serializedSizeInBytes()
              + " of its "
              + length
              + " bytes");
    }
    return r;
  }
}

package dev.lazypull.index;

import dev.lazypull.image.Digest;
import dev.lazypull.image.LazyImage;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * Where the bytes of one virtual EROFS device lie in an unmodified image layer: the device holds
 * the layer's regular files' data in tar order, each file starting on a 4 KiB boundary of the
 * device and zero-padded to the next one (the kernel needs block-aligned data; the tar aligns to
 * 512 bytes). Extent {@code i} is a file's data, {@code length(i)} bytes at tar offset {@code
 * tarOffset(i)} of the uncompressed layer; its device offset is implied: extent 0 starts at 0, each
 * further one at the 4 KiB-aligned end of the one before, and the device ends at the 4 KiB-aligned
 * end of the last. Little-endian (docs/format.md):
 *
 * <pre>
 *   0    8  magic "LPDEVMAP"
 *   8    4  version 1
 *   12   4  layer compression: 0 = tar, 1 = gzip
 *   16   8  device size
 *   24  32  device sha256 (of all its bytes, padding included)
 *   56  32  layer sha256 (the layer digest)
 *   88   8  layer size (stored, compressed)
 *   96   8  tar size (uncompressed)
 *   104 32  zinfo sha256 (gzip; zeros for tar)
 *   136  8  zinfo size (gzip; 0 for tar)
 *   144 32  span table sha256 (gzip; zeros for tar)
 *   176  8  span table size (gzip; 0 for tar)
 *   184  8  extent count n (at least 1)
 *   192 + 16 i: u64 tar offset, u64 length
 * </pre>
 */
public final class DeviceMap {
  public static final byte[] MAGIC = "LPDEVMAP".getBytes(StandardCharsets.US_ASCII);
  public static final int VERSION = 1;
  public static final int HEADER_SIZE = 192;
  public static final int EXTENT_SIZE = 16;
  public static final int TAR = 0;
  public static final int GZIP = 1;
  private static final int BLOCK = 4096;

  private final int compression;
  private final long deviceSize;
  private final byte[] deviceSha256;
  private final byte[] layerSha256;
  private final long layerSize;
  private final long tarSize;
  private final byte[] zinfoSha256;
  private final long zinfoSize;
  private final byte[] spansSha256;
  private final long spansSize;
  private final long[] tarOffsets;
  private final long[] lengths;
  private final long[] deviceOffsets;

  /**
   * @param zinfoSha256 zeros (32 bytes) for a tar layer
   */
  public DeviceMap(
      int compression,
      long deviceSize,
      byte[] deviceSha256,
      byte[] layerSha256,
      long layerSize,
      long tarSize,
      byte[] zinfoSha256,
      long zinfoSize,
      byte[] spansSha256,
      long spansSize,
      long[] tarOffsets,
      long[] lengths)
      throws InvalidIndexException {
    this.compression = compression;
    this.deviceSize = deviceSize;
    this.deviceSha256 = deviceSha256.clone();
    this.layerSha256 = layerSha256.clone();
    this.layerSize = layerSize;
    this.tarSize = tarSize;
    this.zinfoSha256 = zinfoSha256.clone();
    this.zinfoSize = zinfoSize;
    this.spansSha256 = spansSha256.clone();
    this.spansSize = spansSize;
    this.tarOffsets = tarOffsets.clone();
    this.lengths = lengths.clone();
    this.deviceOffsets = new long[tarOffsets.length];
    validate();
  }

  private void validate() throws InvalidIndexException {
    if (compression != TAR && compression != GZIP) {
      throw new InvalidIndexException("device map: unknown layer compression " + compression);
    }
    if (deviceSha256.length != 32
        || layerSha256.length != 32
        || zinfoSha256.length != 32
        || spansSha256.length != 32) {
      throw new InvalidIndexException("device map: digests must be 32 bytes");
    }
    if (layerSize <= 0 || tarSize < 1024 || tarSize > (1L << 50)) {
      throw new InvalidIndexException(
          "device map: layer size " + layerSize + ", tar size " + tarSize);
    }
    if (compression == TAR
        && (tarSize != layerSize
            || zinfoSize != 0
            || spansSize != 0
            || !allZero(zinfoSha256)
            || !allZero(spansSha256))) {
      throw new InvalidIndexException(
          "device map of a tar layer: tar size must be the layer size and there is no "
              + "zinfo or span table");
    }
    if (compression == GZIP && (zinfoSize <= 0 || spansSize <= 0)) {
      throw new InvalidIndexException(
          "device map of a gzip layer without its zinfo and span table");
    }
    if (deviceSize <= 0 || deviceSize % BLOCK != 0 || deviceSize > LazyImage.MAX_BLOB_SIZE) {
      throw new InvalidIndexException(
          "device map: device size "
              + deviceSize
              + " is not a positive multiple of 4096 up"
              + " to "
              + LazyImage.MAX_BLOB_SIZE);
    }
    if (tarOffsets.length == 0 || tarOffsets.length != lengths.length) {
      throw new InvalidIndexException("device map without extents");
    }
    long dev = 0;
    long tarEnd = 0;
    for (int i = 0; i < tarOffsets.length; i++) {
      long t = tarOffsets[i];
      long n = lengths[i];
      // data follows its member's 512-byte header: never at 0, always 512-aligned, never
      // overlapping
      if (n <= 0 || t < 512 || t % 512 != 0 || t < tarEnd || t > tarSize - n) {
        throw new InvalidIndexException(
            "device map: extent "
                + i
                + " (tar offset "
                + t
                + ", length "
                + n
                + ") is not inside the tar after the extent before it (which ends at "
                + tarEnd
                + ")");
      }
      deviceOffsets[i] = dev;
      dev = roundUp(dev + n);
      if (dev > deviceSize) {
        throw new InvalidIndexException(
            "device map: extent " + i + " ends past the device size " + deviceSize);
      }
      tarEnd = t + n;
    }
    if (dev != deviceSize) {
      throw new InvalidIndexException(
          "device map: extents end at " + dev + ", the device size is " + deviceSize);
    }
  }

  static long roundUp(long n) {
    return (n + BLOCK - 1) & -BLOCK;
  }

  private static boolean allZero(byte[] b) {
    for (byte x : b) {
      if (x != 0) {
        return false;
      }
    }
    return true;
  }

  public int compression() {
    return compression;
  }

  public boolean gzip() {
    return compression == GZIP;
  }

  public long deviceSize() {
    return deviceSize;
  }

  public Digest deviceDigest() {
    return new Digest(HexFormat.of().formatHex(deviceSha256));
  }

  public Digest layerDigest() {
    return new Digest(HexFormat.of().formatHex(layerSha256));
  }

  public long layerSize() {
    return layerSize;
  }

  public long tarSize() {
    return tarSize;
  }

  public Digest zinfoDigest() {
    return new Digest(HexFormat.of().formatHex(zinfoSha256));
  }

  public long zinfoSize() {
    return zinfoSize;
  }

  public Digest spansDigest() {
    return new Digest(HexFormat.of().formatHex(spansSha256));
  }

  public long spansSize() {
    return spansSize;
  }

  public int extents() {
    return tarOffsets.length;
  }

  public long tarOffset(int i) {
    return tarOffsets[i];
  }

  public long length(int i) {
    return lengths[i];
  }

  public long deviceOffset(int i) {
    return deviceOffsets[i];
  }

  /**
   * The extent whose padded device range holds device offset {@code pos}: the last one starting at
   * or before.
   */
  public int extentAt(long pos) {
    if (pos < 0 || pos >= deviceSize) {
      throw new IndexOutOfBoundsException(
          "device offset " + pos + " outside [0, " + deviceSize + ")");
    }
    int i = Arrays.binarySearch(deviceOffsets, pos);
    return i >= 0 ? i : -i - 2;
  }

  public byte[] encode() {
    ByteBuffer b =
        ByteBuffer.allocate(HEADER_SIZE + EXTENT_SIZE * tarOffsets.length)
            .order(ByteOrder.LITTLE_ENDIAN);
    b.put(MAGIC)
        .putInt(VERSION)
        .putInt(compression)
        .putLong(deviceSize)
        .put(deviceSha256)
        .put(layerSha256)
        .putLong(layerSize)
        .putLong(tarSize)
        .put(zinfoSha256)
        .putLong(zinfoSize)
        .put(spansSha256)
        .putLong(spansSize)
        .putLong(tarOffsets.length);
    for (int i = 0; i < tarOffsets.length; i++) {
      b.putLong(tarOffsets[i]).putLong(lengths[i]);
    }
    return b.array();
  }

  /** Decodes strictly: exact length, version 1, and every rule of the constructor. */
  public static DeviceMap decode(byte[] bytes) throws InvalidIndexException {
    if (bytes.length < HEADER_SIZE || !Arrays.equals(Arrays.copyOf(bytes, 8), MAGIC)) {
      throw new InvalidIndexException("not a lazypull device map (" + bytes.length + " bytes)");
    }
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    b.position(8);
    int version = b.getInt();
    if (version != VERSION) {
      throw new InvalidIndexException(
          "device map version " + version + " (this lazypull reads version 1)");
    }
    int compression = b.getInt();
    long deviceSize = b.getLong();
    byte[] device = new byte[32];
    byte[] layer = new byte[32];
    b.get(device).get(layer);
    long layerSize = b.getLong();
    long tarSize = b.getLong();
    byte[] zinfo = new byte[32];
    b.get(zinfo);
    long zinfoSize = b.getLong();
    byte[] spans = new byte[32];
    b.get(spans);
    long spansSize = b.getLong();
    long n = b.getLong();
    if (n <= 0
        || n != (bytes.length - HEADER_SIZE) / EXTENT_SIZE
        || (bytes.length - HEADER_SIZE) % EXTENT_SIZE != 0) {
      throw new InvalidIndexException(
          "device map of " + bytes.length + " bytes does not hold " + n + " extents");
    }
    long[] tar = new long[(int) n];
    long[] len = new long[(int) n];
    for (int i = 0; i < n; i++) {
      tar[i] = b.getLong();
      len[i] = b.getLong();
    }
    return new DeviceMap(
        compression,
        deviceSize,
        device,
        layer,
        layerSize,
        tarSize,
        zinfo,
        zinfoSize,
        spans,
        spansSize,
        tar,
        len);
  }
}

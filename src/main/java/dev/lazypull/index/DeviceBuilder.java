package dev.lazypull.index;

import dev.lazypull.erofs.ErofsNode;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Digest;
import dev.lazypull.pack.TarApplier;
import dev.lazypull.tar.TarEntry;
import dev.lazypull.tar.TarFormatException;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * Lays out one layer's virtual device while the layer is read once: each regular file's data gets
 * the next 4 KiB-aligned device range (its chunk indexes point there), its tar offset and length
 * are recorded (the {@link DeviceMap}), and the device's bytes — data and zero padding — are hashed
 * as they pass: the whole device (its name) and fixed entries of {@code entrySize} bytes (its
 * {@link ChunkDigestTable}, which the fetch core verifies every served byte against). Nothing of
 * the data is kept; memory grows with the file count only.
 */
final class DeviceBuilder implements TarApplier.FileData {
  private static final int BLOCK = 4096;
  private static final byte[] ZEROS = new byte[BLOCK];

  private final int deviceId;
  private final int chunkSize;
  private final int entrySize;
  private final MessageDigest device = Digest.sha256();
  private final MessageDigest entry = Digest.sha256();
  private final ChunkDigestTable.Builder table = new ChunkDigestTable.Builder();
  private final byte[] copy = new byte[1 << 16];
  private long position; // device bytes so far
  private int entryFill; // bytes of the current entry so far
  private long[] tarOffsets = new long[256];
  private long[] lengths = new long[256];
  private int extents;

  /**
   * @param deviceId the EROFS device id the chunk indexes name
   * @param chunkSize the bootstrap's chunk size (a power of two ≥ 4096)
   * @param entrySize the digest-table entry size (a multiple of 4096)
   */
  DeviceBuilder(int deviceId, int chunkSize, int entrySize) {
    if (entrySize <= 0 || entrySize % BLOCK != 0) {
      throw new IllegalArgumentException("entry size " + entrySize);
    }
    this.deviceId = deviceId;
    this.chunkSize = chunkSize;
    this.entrySize = entrySize;
  }

  int deviceId() {
    return deviceId;
  }

  boolean isEmpty() {
    return extents == 0;
  }

  @Override
  public void store(ErofsNode file, TarEntry e, long tarOffset, InputStream data)
      throws IOException {
    long start = position;
    long count = (file.size + chunkSize - 1) / chunkSize;
    if (count > Integer.MAX_VALUE) {
      throw new TarFormatException(e.show() + ": too large for the chunk size");
    }
    file.chunks = new long[(int) count];
    for (int c = 0; c < count; c++) {
      file.chunks[c] = ErofsNode.chunkLocation(deviceId, (start + (long) c * chunkSize) / BLOCK);
    }
    long left = file.size;
    while (left > 0) {
      int r = data.read(copy, 0, (int) Math.min(copy.length, left));
      if (r < 0) {
        throw new TarFormatException(e.show() + ": data ends early");
      }
      feed(copy, r);
      left -= r;
    }
    int pad = (int) (DeviceMap.roundUp(position) - position);
    if (pad > 0) {
      feed(ZEROS, pad);
    }
    if (extents == tarOffsets.length) {
      tarOffsets = Arrays.copyOf(tarOffsets, extents * 2);
      lengths = Arrays.copyOf(lengths, extents * 2);
    }
    tarOffsets[extents] = tarOffset;
    lengths[extents] = file.size;
    extents++;
  }

  private void feed(byte[] b, int len) {
    device.update(b, 0, len);
    int off = 0;
    while (off < len) {
      int n = Math.min(len - off, entrySize - entryFill);
      entry.update(b, off, n);
      entryFill += n;
      off += n;
      if (entryFill == entrySize) {
        closeEntry();
      }
    }
    position += len;
  }

  private void closeEntry() {
    table.add(entryFill, entry.digest());
    entryFill = 0;
  }

  /** What the layer's device turned out to be. */
  record Built(
      int deviceId,
      long size,
      byte[] sha256,
      ChunkDigestTable table,
      long[] tarOffsets,
      long[] lengths) {
    Digest digest() {
      return new Digest(HexFormat.of().formatHex(sha256));
    }
  }

  Built finish() {
    if (entryFill > 0) {
      closeEntry();
    }
    return new Built(
        deviceId,
        position,
        device.digest(),
        table.build(),
        Arrays.copyOf(tarOffsets, extents),
        Arrays.copyOf(lengths, extents));
  }
}

package dev.lazypull.erofs;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The flattened block address space of a multi-device image (Linux ≥ 6.4 "flatdev"): the bootstrap
 * at block 0, data blob k at block {@code mapped_blkaddr} of device slot k-1, zeros everywhere
 * else. Mounting such a device without {@code device=} options makes EROFS read chunk (device k,
 * blkaddr b) at block b + mapped_blkaddr_k.
 *
 * <p>Images whose slots lack {@code mapped_blkaddr} (mkfs.erofs 1.5 leaves them empty) get a
 * computed layout; their bootstrap must then be served with the slots patched ({@link #patchHead}).
 */
public record FlatLayout(long bootstrapBlocks, List<Extent> blobs, boolean computed) {
  public static final int BLOCK_SIZE = 4096;

  /** nydus aligns each blob's start to 512 KiB (V6_BLOCK_SEG_ALIGNMENT); so do we. */
  public static final long ALIGN_BLOCKS = (512 << 10) / BLOCK_SIZE;

  /** Blob {@code index} (device id index+1) occupies blocks [startBlock, startBlock + blocks). */
  public record Extent(int index, long startBlock, long blocks, long size) {
    public long startByte() {
      return startBlock * BLOCK_SIZE;
    }

    public long endByte() {
      return startByte() + size;
    }
  }

  public FlatLayout {
    blobs = List.copyOf(blobs);
  }

  /** Size of the flattened device in bytes: the end of the last blob, rounded up to a block. */
  public long deviceSize() {
    long end = bootstrapBlocks;
    for (Extent e : blobs) {
      end = Math.max(end, e.startBlock + e.blocks);
    }
    return end * BLOCK_SIZE;
  }

  /**
   * The layout of an image: the slots' own {@code mapped_blkaddr} when every slot has one that is
   * consistent (after the bootstrap, blocks covering the blob, no overlaps), else a computed one.
   */
  public static FlatLayout of(BootstrapHeader header, long bootstrapSize, List<Long> blobSizes)
      throws ErofsFormatException {
    List<DeviceSlot> slots = header.devices();
    if (slots.size() != blobSizes.size()) {
      throw new ErofsFormatException(
          slots.size() + " device slots for " + blobSizes.size() + " blobs");
    }
    long bootBlocks = blocks(bootstrapSize);
    List<Extent> own = new ArrayList<>();
    boolean usable = true;
    for (int i = 0; i < slots.size(); i++) {
      DeviceSlot s = slots.get(i);
      long need = blocks(blobSizes.get(i));
      if (s.mappedBlkaddr() < bootBlocks || s.blocks() < need) {
        usable = false;
        break;
      }
      own.add(new Extent(i, s.mappedBlkaddr(), s.blocks(), blobSizes.get(i)));
    }
    if (usable && !overlaps(bootBlocks, own)) {
      return new FlatLayout(bootBlocks, own, false);
    }
    return compute(bootstrapSize, blobSizes);
  }

  /** Lays blobs out in device order after the bootstrap, each start aligned to 512 KiB. */
  public static FlatLayout compute(long bootstrapSize, List<Long> blobSizes) {
    long bootBlocks = blocks(bootstrapSize);
    long next = alignUp(bootBlocks);
    List<Extent> extents = new ArrayList<>();
    for (int i = 0; i < blobSizes.size(); i++) {
      long b = blocks(blobSizes.get(i));
      extents.add(new Extent(i, next, b, blobSizes.get(i)));
      next = alignUp(next + b);
    }
    return new FlatLayout(bootBlocks, extents, true);
  }

  private static boolean overlaps(long bootBlocks, List<Extent> extents) {
    List<Extent> sorted = new ArrayList<>(extents);
    sorted.sort((a, b) -> Long.compare(a.startBlock, b.startBlock));
    long end = bootBlocks;
    for (Extent e : sorted) {
      if (e.startBlock < end) {
        return true;
      }
      end = e.startBlock + e.blocks;
    }
    if (end > 0xFFFFFFFFL) {
      return true; // mapped_blkaddr is 32-bit
    }
    return false;
  }

  static long blocks(long bytes) {
    return (bytes + BLOCK_SIZE - 1) / BLOCK_SIZE;
  }

  private static long alignUp(long block) {
    return (block + ALIGN_BLOCKS - 1) / ALIGN_BLOCKS * ALIGN_BLOCKS;
  }

  /**
   * Returns a copy of the bootstrap's leading bytes (at least {@link BootstrapHeader#bytesNeeded})
   * with every slot's {@code blocks} and {@code mapped_blkaddr} set to this layout, and the
   * superblock checksum recomputed when the image has one (the table usually lives in block 0,
   * which the checksum covers).
   */
  public byte[] patchHead(byte[] head) throws ErofsFormatException {
    byte[] out = head.clone();
    ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
    Superblock sb = Superblock.decode(b);
    for (Extent e : blobs) {
      int slot = (int) (sb.deviceTableOffset() + (long) e.index * DeviceSlot.SIZE);
      if (slot + DeviceSlot.SIZE > out.length) {
        throw new ErofsFormatException("device slot " + e.index + " lies beyond the given bytes");
      }
      b.putInt(slot + 64, (int) e.blocks);
      b.putInt(slot + 68, (int) e.startBlock);
    }
    if ((sb.featureCompat() & Superblock.COMPAT_SB_CHKSUM) != 0) {
      b.putInt(Superblock.OFFSET + 4, Superblock.computeChecksum(b, sb.blockSize()));
    }
    return out;
  }
}

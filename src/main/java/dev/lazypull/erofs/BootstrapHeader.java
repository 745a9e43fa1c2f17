package dev.lazypull.erofs;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The superblock plus device table of a bootstrap: all the daemon needs to name and map an image's
 * blobs.
 */
public record BootstrapHeader(Superblock superblock, List<DeviceSlot> devices) {
  /** More devices than any real image has; bounds what a malformed superblock can make us read. */
  public static final int MAX_DEVICES = 4096;

  public BootstrapHeader {
    devices = List.copyOf(devices);
  }

  /** Bytes from offset 0 needed to decode the header of an image whose superblock is {@code sb}. */
  public static long bytesNeeded(Superblock sb) {
    long end = Superblock.OFFSET + Superblock.SIZE;
    if (sb.deviceCount() > 0) {
      end = Math.max(end, sb.deviceTableOffset() + (long) sb.deviceCount() * DeviceSlot.SIZE);
    }
    return Math.max(end, sb.blockSize());
  }

  /**
   * Decodes the header from the image's leading bytes (at least {@link #bytesNeeded}); checks the
   * magic, the checksum, and that the device table lies where it can.
   */
  public static BootstrapHeader decode(ByteBuffer head) throws ErofsFormatException {
    Superblock sb = Superblock.decode(head);
    if (sb.deviceCount() > MAX_DEVICES) {
      throw new ErofsFormatException(
          "image declares " + sb.deviceCount() + " devices (max " + MAX_DEVICES + ")");
    }
    if (sb.deviceCount() > 0 && sb.deviceTableOffset() < Superblock.OFFSET + Superblock.SIZE) {
      throw new ErofsFormatException(
          "device table at " + sb.deviceTableOffset() + " overlaps the superblock");
    }
    long needed = bytesNeeded(sb);
    if (head.remaining() < needed) {
      throw new ErofsFormatException(
          "need " + needed + " leading bytes to read the device table, have " + head.remaining());
    }
    sb.verifyChecksum(head);
    List<DeviceSlot> slots = new ArrayList<>(sb.deviceCount());
    for (int i = 0; i < sb.deviceCount(); i++) {
      slots.add(
          DeviceSlot.decode(
              head, head.position() + (int) sb.deviceTableOffset() + i * DeviceSlot.SIZE));
    }
    return new BootstrapHeader(sb, slots);
  }
}

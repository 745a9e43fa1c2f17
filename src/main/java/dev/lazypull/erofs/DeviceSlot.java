package dev.lazypull.erofs;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * One 128-byte device-table slot; slot k describes EROFS device id k+1.
 *
 * @param tag the blob name (64-char sha256 hex by lazypull/nydus convention), "" when untagged
 *     (mkfs.erofs --blobdev leaves slots empty)
 * @param blocks the device's size in blocks
 * @param mappedBlkaddr the device's first block in the flattened address space (0 = not mapped)
 */
public record DeviceSlot(String tag, long blocks, long mappedBlkaddr) {
  public static final int SIZE = 128;
  public static final int TAG_SIZE = 64;

  public static DeviceSlot decode(ByteBuffer buf, int offset) {
    ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int len = 0;
    while (len < TAG_SIZE && b.get(offset + len) != 0) {
      len++;
    }
    byte[] tag = new byte[len];
    b.get(offset, tag);
    return new DeviceSlot(
        new String(tag, StandardCharsets.ISO_8859_1),
        Integer.toUnsignedLong(b.getInt(offset + 64)),
        Integer.toUnsignedLong(b.getInt(offset + 68)));
  }

  /**
   * Writes the 128-byte slot at {@code offset}: tag NUL-padded (a 64-char tag has no NUL), reserved
   * zero.
   */
  public void encode(ByteBuffer buf, int offset) {
    byte[] t = tag.getBytes(StandardCharsets.ISO_8859_1);
    if (t.length > TAG_SIZE) {
      throw new IllegalArgumentException("device tag longer than " + TAG_SIZE + " bytes: " + tag);
    }
    ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < SIZE; i++) {
      b.put(offset + i, (byte) 0);
    }
    b.put(offset, t);
    b.putInt(offset + 64, (int) blocks);
    b.putInt(offset + 68, (int) mappedBlkaddr);
  }

  public boolean isTagged() {
    return !tag.isEmpty();
  }
}

package dev.lazypull.erofs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

public class BootstrapHeaderTest {
  /** A first block with a superblock and {@code devices} slots at byte 1152 (devt_slotoff 9). */
  public static ByteBuffer block0(int devices, boolean checksum, String tag) throws Exception {
    ByteBuffer b = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);
    int sb = Superblock.OFFSET;
    b.putInt(sb, Superblock.MAGIC);
    b.putInt(sb + 8, checksum ? Superblock.COMPAT_SB_CHKSUM : 0);
    b.put(sb + 12, (byte) 12);
    b.putShort(sb + 14, (short) 40);
    b.putLong(sb + 16, 4);
    b.putInt(
        sb + 80,
        devices > 0 ? Superblock.INCOMPAT_CHUNKED_FILE | Superblock.INCOMPAT_DEVICE_TABLE : 0);
    b.putShort(sb + 86, (short) devices);
    b.putShort(sb + 88, (short) 9);
    for (int i = 0; i < devices; i++) {
      int slot = 9 * 128 + i * 128;
      byte[] t = tag.getBytes(StandardCharsets.US_ASCII);
      b.put(slot, t);
      b.putInt(slot + 64, 100 + i);
      b.putInt(slot + 68, 1000 * (i + 1));
    }
    if (checksum) {
      b.putInt(sb + 4, Superblock.computeChecksum(b, 4096));
    }
    return b;
  }

  @Test
  void decodesSuperblockAndDeviceSlots() throws Exception {
    String hex = "ab".repeat(32);
    BootstrapHeader h = BootstrapHeader.decode(block0(2, true, hex));
    assertEquals(4096, h.superblock().blockSize());
    assertEquals(40, h.superblock().rootNid());
    assertEquals(2, h.devices().size());
    assertEquals(hex, h.devices().get(1).tag());
    assertEquals(101, h.devices().get(1).blocks());
    assertEquals(2000, h.devices().get(1).mappedBlkaddr());
  }

  @Test
  void untaggedSlotsDecodeAsEmptyTags() throws Exception {
    BootstrapHeader h = BootstrapHeader.decode(block0(1, false, ""));
    assertTrue(!h.devices().get(0).isTagged());
  }

  @Test
  void badMagicChecksumAndTruncationAreFormatErrors() throws Exception {
    ByteBuffer b = block0(1, true, "x");
    b.put(3000, (byte) 1); // corrupt a checksummed byte
    ErofsFormatException e =
        assertThrows(ErofsFormatException.class, () -> BootstrapHeader.decode(b));
    assertTrue(e.getMessage().contains("checksum"));
    ByteBuffer bad = block0(0, false, "");
    bad.putInt(1024, 0x12345678);
    assertThrows(ErofsFormatException.class, () -> BootstrapHeader.decode(bad));
    assertThrows(
        ErofsFormatException.class, () -> BootstrapHeader.decode(ByteBuffer.allocate(1100)));
    ByteBuffer many = block0(0, false, "");
    many.putInt(1024 + 80, Superblock.INCOMPAT_DEVICE_TABLE).putShort(1024 + 86, (short) 60000);
    assertThrows(ErofsFormatException.class, () -> BootstrapHeader.decode(many));
  }
}

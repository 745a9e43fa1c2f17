package dev.lazypull.erofs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The on-disk codecs, fed and read back as bytes. */
class ErofsCodecTest {
  @Test
  void superblockEncodesEveryFieldAndChecksumCoversBlockZero() throws Exception {
    ByteBuffer b0 = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);
    Superblock sb = Superblock.forImage(3, 12, 40, 123, 1_600_000_000L, 5, 77, 0xC, 2, 9);
    sb.encode(b0);
    new DeviceSlot("a".repeat(64), 10, 128).encode(b0, 1152);
    b0.putInt(1024 + 4, Superblock.computeChecksum(b0, 4096));
    BootstrapHeader h = BootstrapHeader.decode(b0);
    Superblock back = h.superblock();
    assertEquals(40, back.rootNid());
    assertEquals(123, back.inodes());
    assertEquals(1_600_000_000L, back.buildTime());
    assertEquals(5, back.buildTimeNsec());
    assertEquals(77, back.blocks());
    assertEquals(0xC, back.featureIncompat());
    assertEquals(2, back.extraDevices());
    assertEquals(new DeviceSlot("a".repeat(64), 10, 128), h.devices().get(0));
    assertEquals(new DeviceSlot("", 0, 0), h.devices().get(1));
    b0.put(3000, (byte) 1); // an inode byte in block 0: the checksum covers it
    assertThrows(ErofsFormatException.class, () -> BootstrapHeader.decode(b0));
  }

  @Test
  void inodesRoundTripCompactAndExtended() throws Exception {
    ByteBuffer b = ByteBuffer.allocate(128);
    InodeRecord compact =
        new InodeRecord(
            false, InodeRecord.FLAT_INLINE, 3, 040755, 5, 300, -1, 9, 1000, 2000, 111, 0);
    compact.encode(b, 0);
    assertEquals(compact, InodeRecord.decode(b, 0, 111, 0));
    InodeRecord ext =
        new InodeRecord(
            true,
            InodeRecord.CHUNK_BASED,
            0,
            0100644,
            70000,
            5L << 30,
            0x28,
            10,
            70000,
            70001,
            1_600_000_000L,
            123456789);
    ext.encode(b, 64);
    assertEquals(ext, InodeRecord.decode(b, 64, 0, 0));
    assertThrows(
        IllegalStateException.class,
        () -> new InodeRecord(false, 0, 0, 0100644, 1, 5L << 30, 0, 1, 0, 0, 0, 0).encode(b, 0),
        "a >4 GiB size needs an extended inode");
    b.putShort(0, (short) 0x21); // bit 5 set: unknown format bits are rejected
    assertThrows(ErofsFormatException.class, () -> InodeRecord.decode(b, 0, 0, 0));
  }

  @Test
  void deviceNumbersUseLinuxNewEncodeDev() {
    assertEquals(0x103, InodeRecord.encodeDev(1, 3));
    int big = InodeRecord.encodeDev(10, 300);
    assertEquals(10, InodeRecord.devMajor(big));
    assertEquals(300, InodeRecord.devMinor(big));
  }

  @Test
  void directoriesSortBytewiseIncludingDotsAndSplitPerBlock() throws Exception {
    List<byte[]> names = new ArrayList<>();
    for (String n : new String[] {"a", "Zed", "-dash", "!bang", ".", "..", "é"}) {
      names.add(n.getBytes(StandardCharsets.UTF_8));
    }
    for (int i = 0; i < 300; i++) {
      names.add(String.format("a-rather-long-file-name-%04d", i).getBytes(StandardCharsets.UTF_8));
    }
    names.sort(DirBlocks.NAME_ORDER);
    assertEquals("!bang", new String(names.get(0), StandardCharsets.UTF_8));
    assertEquals("-dash", new String(names.get(1), StandardCharsets.UTF_8));
    assertEquals(".", new String(names.get(2), StandardCharsets.UTF_8));
    List<DirBlocks.Entry> entries = new ArrayList<>();
    for (int i = 0; i < names.size(); i++) {
      entries.add(new DirBlocks.Entry(names.get(i), 100 + i, 1));
    }
    byte[] data = DirBlocks.encode(entries, 4096);
    assertEquals(DirBlocks.size(names, 4096), data.length);
    assertEquals(3, (data.length + 4095) / 4096, "300 entries of ~40 bytes take three blocks");
    List<DirBlocks.Entry> back = new ArrayList<>();
    for (int start = 0; start < data.length; start += 4096) {
      back.addAll(
          DirBlocks.decodeBlock(ByteBuffer.wrap(data), start, Math.min(4096, data.length - start)));
    }
    assertEquals(entries.size(), back.size());
    for (int i = 0; i < entries.size(); i++) {
      assertArrayEquals(entries.get(i).name(), back.get(i).name());
      assertEquals(entries.get(i).nid(), back.get(i).nid());
    }
  }

  @Test
  void malformedDirectoryBlocksAreRejected() {
    ByteBuffer b = ByteBuffer.allocate(4096);
    b.putShort(8, (short) 6); // first nameoff below one dirent
    assertThrows(ErofsFormatException.class, () -> DirBlocks.decodeBlock(b, 0, 4096));
    b.order(ByteOrder.LITTLE_ENDIAN).putShort(8, (short) 24).putShort(20, (short) 5000);
    assertThrows(ErofsFormatException.class, () -> DirBlocks.decodeBlock(b, 0, 4096));
  }

  @Test
  void xattrsRoundTripWithPrefixesAndRejectUnknownNamespaces() throws Exception {
    Map<String, byte[]> x = new LinkedHashMap<>();
    x.put("user.comment", "hello".getBytes(StandardCharsets.UTF_8));
    x.put("trusted.t", new byte[] {0, -1, 0});
    x.put("security.capability", new byte[20]);
    x.put("system.posix_acl_access", new byte[] {2, 0, 0, 0});
    int size = XattrCodec.areaSize(x);
    ByteBuffer b = ByteBuffer.allocate(size);
    XattrCodec.encode(x, b, 0);
    assertEquals(size, 12 + 4 * (XattrCodec.icount(size) - 1));
    Map<String, byte[]> back = XattrCodec.decode(b, 0, size, null);
    assertEquals(x.keySet(), back.keySet());
    for (String k : x.keySet()) {
      assertArrayEquals(x.get(k), back.get(k));
    }
    assertThrows(
        ErofsFormatException.class,
        () -> XattrCodec.areaSize(Map.of("system.nfs4_acl", new byte[1])));
  }
}

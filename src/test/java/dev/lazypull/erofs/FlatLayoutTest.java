package dev.lazypull.erofs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

class FlatLayoutTest {
  @Test
  void usesTheSlotsOwnMappingWhenConsistent() throws Exception {
    ByteBuffer head =
        BootstrapHeaderTest.block0(2, true, "t"); // slots: blocks 100/101, mapped 1000/2000
    BootstrapHeader h = BootstrapHeader.decode(head);
    FlatLayout l = FlatLayout.of(h, 8192, List.of(100L * 4096, 101L * 4096 - 5));
    assertFalse(l.computed());
    assertEquals(1000, l.blobs().get(0).startBlock());
    assertEquals((2000 + 101) * 4096L, l.deviceSize());
  }

  @Test
  void computesAnAlignedLayoutForUnmappedSlotsAndPatchesTheHead() throws Exception {
    ByteBuffer head = BootstrapHeaderTest.block0(2, true, "");
    head.putInt(9 * 128 + 68, 0).putInt(10 * 128 + 68, 0); // no mapped_blkaddr, like mkfs.erofs 1.5
    head.putInt(1024 + 4, Superblock.computeChecksum(head, 4096));
    BootstrapHeader h = BootstrapHeader.decode(head);
    FlatLayout l = FlatLayout.of(h, 3 * 4096 + 1, List.of(200L * 4096, 5000L));
    assertTrue(l.computed());
    assertEquals(4, l.bootstrapBlocks());
    assertEquals(128, l.blobs().get(0).startBlock(), "512 KiB aligned after the bootstrap");
    assertEquals(384, l.blobs().get(1).startBlock(), "next 512 KiB boundary after blob 0");
    assertEquals((384 + 2) * 4096L, l.deviceSize());

    byte[] patched = l.patchHead(head.array());
    BootstrapHeader ph =
        BootstrapHeader.decode(ByteBuffer.wrap(patched)); // checksum still verifies
    assertEquals(128, ph.devices().get(0).mappedBlkaddr());
    assertEquals(200, ph.devices().get(0).blocks());
    assertEquals(384, ph.devices().get(1).mappedBlkaddr());
    assertEquals(2, ph.devices().get(1).blocks());
  }

  @Test
  void overlappingOrShortSlotsAreRecomputed() throws Exception {
    ByteBuffer head = BootstrapHeaderTest.block0(2, false, "t");
    head.putInt(10 * 128 + 68, 1050); // blob 1 would start inside blob 0
    FlatLayout l = FlatLayout.of(BootstrapHeader.decode(head), 8192, List.of(100L * 4096, 4096L));
    assertTrue(l.computed());
  }
}

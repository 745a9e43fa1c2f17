package dev.lazypull.nbd.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.nbd.server.ExportDevice;
import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

class SegmentDeviceTest {
  private static SegmentDevice.Segment bytes(long start, byte[] b) {
    return new SegmentDevice.Segment(start, b.length, SegmentDevice.bytes(b), 0);
  }

  @Test
  void runsMergeNeighboursAndClipToTheRange() {
    SegmentDevice d =
        new SegmentDevice(
            100, List.of(bytes(10, new byte[5]), bytes(15, new byte[5]), bytes(40, new byte[10])));
    assertEquals(
        List.of(
            new ExportDevice.Run(0, 10, true),
            new ExportDevice.Run(10, 10, false),
            new ExportDevice.Run(20, 20, true),
            new ExportDevice.Run(40, 10, false),
            new ExportDevice.Run(50, 50, true)),
        d.runs(0, 100));
    assertEquals(List.of(new ExportDevice.Run(12, 3, false)), d.runs(12, 3));
    assertEquals(List.of(new ExportDevice.Run(60, 40, true)), d.runs(60, 40));
    assertEquals(
        List.of(new ExportDevice.Run(45, 5, false), new ExportDevice.Run(50, 1, true)),
        d.runs(45, 6));
    assertThrows(IllegalArgumentException.class, () -> d.runs(90, 11));
  }

  @Test
  void readsFillHolesWithZerosAndHonourBackingOffsets() throws Exception {
    byte[] a = {1, 2, 3, 4, 5, 6, 7, 8};
    SegmentDevice d =
        new SegmentDevice(
            32, List.of(new SegmentDevice.Segment(4, 4, SegmentDevice.bytes(a), 2), bytes(20, a)));
    ByteBuffer buf = ByteBuffer.allocate(30);
    d.read(1, buf);
    byte[] expected = new byte[30];
    System.arraycopy(a, 2, expected, 3, 4);
    System.arraycopy(a, 0, expected, 19, 8);
    assertArrayEquals(expected, buf.array());
    assertTrue(d.prepare(0, 32).isDone(), "memory-backed segments are always ready");
  }

  @Test
  void overlappingSegmentsAreRejected() {
    assertThrows(
        IllegalArgumentException.class,
        () -> new SegmentDevice(100, List.of(bytes(10, new byte[10]), bytes(15, new byte[10]))));
    assertThrows(
        IllegalArgumentException.class,
        () -> new SegmentDevice(12, List.of(bytes(10, new byte[10]))));
  }
}

package dev.lazypull.overlay;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.roaringbitmap.RoaringBitmap;

/**
 * Block states: range marks, runs, and the state file codec fed good, damaged and hostile bytes.
 */
class BlockStatesTest {
  private static String runs(BlockStates s, long from, long to) {
    List<String> out = new ArrayList<>();
    s.forEachRun(from, to, (a, b, st) -> out.add(a + "-" + b + ":" + st.name().charAt(0)));
    return String.join(" ", out);
  }

  @Test
  void marksAreExclusiveAndRunsCoverTheRange() {
    BlockStates s = new BlockStates(100);
    assertEquals("0-100:U", runs(s, 0, 100));
    s.markDirty(10, 20);
    s.markZero(15, 30);
    s.markDirty(50, 51);
    assertEquals("0-10:U 10-15:D 15-30:Z 30-50:U 50-51:D 51-100:U", runs(s, 0, 100));
    assertEquals("12-15:D 15-16:Z", runs(s, 12, 16));
    assertEquals(BlockStates.State.ZERO, s.state(15));
    assertEquals(BlockStates.State.DIRTY, s.state(14));
    assertEquals(BlockStates.State.UNTOUCHED, s.state(99));
    assertTrue(s.anyDirty(0, 11));
    assertFalse(s.anyDirty(20, 50));
    assertEquals(6, s.dirtyCount());
    assertEquals(15, s.zeroCount());
    s.markDirty(0, 100);
    assertEquals("0-100:D", runs(s, 0, 100));
    assertEquals(0, s.zeroCount());
    assertThrows(IllegalArgumentException.class, () -> s.markZero(99, 101));
  }

  @Test
  void stateFileRoundTrips() throws IOException {
    BlockStates s = new BlockStates(1 << 20);
    Random rnd = new Random(7);
    for (int i = 0; i < 2000; i++) {
      long a = rnd.nextInt(1 << 20);
      long n = 1 + rnd.nextInt(300);
      if (rnd.nextBoolean()) {
        s.markDirty(a, Math.min(a + n, 1 << 20));
      } else {
        s.markZero(a, Math.min(a + n, 1 << 20));
      }
    }
    byte[] enc = s.encode(4096, (1L << 20) * 4096 - 100, 42);
    BlockStates.Decoded d = BlockStates.decode(enc);
    assertEquals(4096, d.blockSize());
    assertEquals((1L << 20) * 4096 - 100, d.size());
    assertEquals(42, d.generation());
    assertEquals(s.dirty(), d.states().dirty());
    assertEquals(s.zero(), d.states().zero());
    assertTrue(enc.length <= BlockStates.maxEncodedSize(1 << 20));
  }

  @Test
  void theBitmapsArePortableRoaring() throws IOException {
    BlockStates s = new BlockStates(1000);
    s.markDirty(3, 9);
    s.markZero(700, 1000);
    byte[] enc = s.encode(512, 512_000, 1);
    ByteBuffer b = ByteBuffer.wrap(enc).order(ByteOrder.LITTLE_ENDIAN);
    int d = b.getInt(32);
    RoaringBitmap dirty = new RoaringBitmap();
    dirty.deserialize(ByteBuffer.wrap(enc, 40, d).slice());
    assertEquals(RoaringBitmap.bitmapOf(3, 4, 5, 6, 7, 8), dirty, "the portable format at byte 40");
  }

  @Test
  void everyDamagedByteIsRefusedWithAnIoException() {
    BlockStates s = new BlockStates(5000);
    s.markDirty(1, 300);
    s.markZero(4000, 4100);
    byte[] enc = s.encode(4096, 5000L * 4096, 3);
    for (int i = 0; i < enc.length; i++) {
      for (int bit : new int[] {0x01, 0x80}) {
        byte[] bad = enc.clone();
        bad[i] ^= (byte) bit;
        assertThrows(IOException.class, () -> BlockStates.decode(bad), "byte " + i);
      }
    }
    for (int n = 0; n < enc.length; n++) {
      byte[] cut = Arrays.copyOf(enc, n);
      assertThrows(IOException.class, () -> BlockStates.decode(cut), "truncated to " + n);
    }
  }

  /**
   * Bytes with a valid checksum but hostile contents: lengths, sizes, blocks past the end,
   * overlaps.
   */
  @Test
  void hostileContentsWithAValidChecksumAreRefused() {
    BlockStates s = new BlockStates(100);
    s.markDirty(1, 5);
    byte[] good = s.encode(4096, 100 * 4096, 1);
    assertThrows(
        IOException.class,
        () -> BlockStates.decode(resum(patchInt(good, 32, 1 << 30))),
        "dirty length");
    assertThrows(
        IOException.class, () -> BlockStates.decode(resum(patchInt(good, 12, 3000))), "block size");
    assertThrows(
        IOException.class,
        () -> BlockStates.decode(resum(patchLong(good, 16, 2 * 4096))),
        "past the end");
    assertThrows(
        IOException.class, () -> BlockStates.decode(resum(patchInt(good, 8, 2))), "version");
    // a bitmap of garbage where the dirty bitmap goes
    byte[] garbage = good.clone();
    for (int i = 40; i < garbage.length - 4; i++) {
      garbage[i] = (byte) 0xff;
    }
    assertThrows(IOException.class, () -> BlockStates.decode(resum(garbage)), "garbage bitmap");
    // dirty and zero overlapping
    RoaringBitmap both = RoaringBitmap.bitmapOf(2);
    int n = both.serializedSizeInBytes();
    ByteBuffer b = ByteBuffer.allocate(40 + 2 * n + 4).order(ByteOrder.LITTLE_ENDIAN);
    b.put(BlockStates.MAGIC)
        .putInt(1)
        .putInt(4096)
        .putLong(100 * 4096)
        .putLong(1)
        .putInt(n)
        .putInt(n);
    both.serialize(b);
    both.serialize(b);
    assertThrows(IOException.class, () -> BlockStates.decode(resum(b.array())), "overlap");
  }

  private static byte[] patchInt(byte[] in, int at, int v) {
    byte[] out = in.clone();
    ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putInt(at, v);
    return out;
  }

  private static byte[] patchLong(byte[] in, int at, long v) {
    byte[] out = in.clone();
    ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putLong(at, v);
    return out;
  }

  private static byte[] resum(byte[] in) {
    CRC32C crc = new CRC32C();
    crc.update(in, 0, in.length - 4);
    ByteBuffer.wrap(in).order(ByteOrder.LITTLE_ENDIAN).putInt(in.length - 4, (int) crc.getValue());
    return in;
  }
}

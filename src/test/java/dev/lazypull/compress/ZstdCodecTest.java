package dev.lazypull.compress;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.luben.zstd.ZstdCompressCtx;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ZstdCodecTest {
  private static ByteBuffer direct(byte[] b) {
    ByteBuffer d = ByteBuffer.allocateDirect(b.length);
    d.put(b).flip();
    return d;
  }

  private static byte[] bytes(ByteBuffer b) {
    byte[] out = new byte[b.remaining()];
    b.duplicate().get(out);
    return out;
  }

  static byte[] compress(byte[] data, int level) {
    try (ZstdCodec.Compressor c = new ZstdCodec.Compressor(level)) {
      ByteBuffer dst = ByteBuffer.allocateDirect((int) ZstdCodec.maxFrameLength(data.length));
      c.compress(direct(data), dst);
      return bytes(dst.flip());
    }
  }

  private static byte[] roundTrip(byte[] data) throws CorruptFrameException {
    byte[] frame = compress(data, ZstdCodec.DEFAULT_LEVEL);
    assertTrue(frame.length <= ZstdCodec.maxFrameLength(data.length));
    ByteBuffer dst = ByteBuffer.allocateDirect(data.length + 8192);
    dst.position(4096); // decoding lands at the position, not at 0
    ZstdCodec.decompress(direct(frame), dst, data.length);
    assertEquals(4096 + data.length, dst.position());
    // heap sources decode the same
    ByteBuffer dst2 = ByteBuffer.allocateDirect(data.length);
    ZstdCodec.decompress(ByteBuffer.wrap(frame), dst2, data.length);
    assertArrayEquals(data, bytes(dst2.flip()));
    return bytes(dst.flip().position(4096));
  }

  @Test
  void everyChunkShapeRoundTrips() throws Exception {
    Random r = new Random(1);
    byte[] random = new byte[1 << 20];
    r.nextBytes(random);
    byte[] text = new byte[1 << 20];
    for (int i = 0; i < text.length; i++) {
      text[i] = (byte) ("lazypull compresses chunks ".charAt(i % 27) + (i / 4096) % 3);
    }
    byte[] tail =
        Arrays.copyOf(
            text, 5000 + 4096 - 5000 % 4096); // a file's last chunk: data then zero padding
    Arrays.fill(tail, 5000, tail.length, (byte) 0);
    for (byte[] data :
        new byte[][] {
          new byte[0],
          {7},
          new byte[4096],
          new byte[1 << 20],
          random,
          text,
          tail,
          Arrays.copyOf(random, 4096),
          new byte[16 << 20]
        }) {
      assertArrayEquals(data, roundTrip(data), "length " + data.length);
    }
    assertTrue(
        compress(random, 3).length > random.length,
        "incompressible data stays a (raw-block) frame");
    assertTrue(compress(new byte[1 << 20], 3).length < 100);
  }

  @Test
  void sameInputSameFrame() {
    byte[] data = new byte[300_000];
    new Random(2).nextBytes(data);
    Arrays.fill(data, 100_000, 200_000, (byte) 'x');
    assertArrayEquals(compress(data, 3), compress(data, 3));
    assertArrayEquals(compress(data, 19), compress(data, 19));
  }

  @Test
  void refusesLyingSizes() {
    byte[] data = new byte[8192];
    Arrays.fill(data, (byte) 1);
    byte[] frame = compress(data, 3);
    ByteBuffer dst = ByteBuffer.allocateDirect(1 << 20);
    // the caller declares less or more than the frame holds
    CorruptFrameException less =
        assertThrows(
            CorruptFrameException.class,
            () -> ZstdCodec.decompress(direct(frame), dst.clear(), 4096));
    assertTrue(less.getMessage().contains("declares 8192 bytes, expected 4096"), less.getMessage());
    assertThrows(
        CorruptFrameException.class, () -> ZstdCodec.decompress(direct(frame), dst.clear(), 12288));
    // too small a destination for the declared size is a caller bug
    assertThrows(
        IllegalArgumentException.class,
        () -> ZstdCodec.decompress(direct(frame), ByteBuffer.allocateDirect(4096), 8192));
  }

  @Test
  void refusesBombs() {
    // 16 MiB of zeros compresses to a few hundred bytes; declared as one 4 KiB block it is refused
    // unread
    byte[] bomb = compress(new byte[16 << 20], 3);
    assertTrue(bomb.length < 1024);
    ByteBuffer dst = ByteBuffer.allocateDirect(4096);
    CorruptFrameException e =
        assertThrows(
            CorruptFrameException.class, () -> ZstdCodec.decompress(direct(bomb), dst, 4096));
    assertTrue(e.getMessage().contains("declares 16777216 bytes"), e.getMessage());
    // the same without a content size in the header (as a streaming compressor writes it)
    byte[] noSize;
    try (ZstdCompressCtx c = new ZstdCompressCtx()) {
      c.setContentSize(false);
      noSize = c.compress(new byte[16 << 20]);
    }
    e =
        assertThrows(
            CorruptFrameException.class,
            () -> ZstdCodec.decompress(direct(noSize), dst.clear(), 4096));
    assertTrue(e.getMessage().contains("no content size"), e.getMessage());
    assertEquals(0, dst.position(), "nothing decoded");
  }

  @Test
  void refusesHeaderThatLiesAboutItsContent() {
    // a frame whose header says 8192 bytes but whose blocks hold 4096: patch the 2-byte content
    // size field
    byte[] small = new byte[4096];
    Arrays.fill(small, (byte) 3);
    byte[] frame = compress(small, 3);
    // find the frame header descriptor: byte 4; single-segment with a 2-byte FCS (256..65791 stores
    // size-256)
    int fhd = frame[4] & 0xff;
    assertEquals(1, fhd >> 6, "2-byte content size field");
    assertTrue((fhd & 0x20) != 0, "single segment");
    int pos = 5 + ((fhd & 3) == 0 ? 0 : 1 << ((fhd & 3) - 1));
    byte[] lying = frame.clone();
    int claimed = 8192 - 256;
    lying[pos] = (byte) claimed;
    lying[pos + 1] = (byte) (claimed >> 8);
    ByteBuffer dst = ByteBuffer.allocateDirect(8192);
    CorruptFrameException e =
        assertThrows(
            CorruptFrameException.class, () -> ZstdCodec.decompress(direct(lying), dst, 8192));
    assertTrue(
        e.getMessage().contains("does not decode") || e.getMessage().contains("decoded to"),
        e.getMessage());
  }

  @Test
  void refusesTruncatedCorruptAndTrailingBytes() {
    byte[] data = new byte[1 << 20];
    new Random(3).nextBytes(data);
    for (int i = 0; i < data.length; i += 3) {
      data[i] = 'a';
    }
    byte[] frame = compress(data, 3);
    ByteBuffer dst = ByteBuffer.allocateDirect(data.length);
    for (int cut : new int[] {0, 1, 5, 6, 20, frame.length / 2, frame.length - 1}) {
      byte[] t = Arrays.copyOf(frame, cut);
      assertThrows(
          CorruptFrameException.class,
          () -> ZstdCodec.decompress(direct(t), dst.clear(), data.length),
          "cut at " + cut);
    }
    byte[] trailing = Arrays.copyOf(frame, frame.length + 3);
    CorruptFrameException e =
        assertThrows(
            CorruptFrameException.class,
            () -> ZstdCodec.decompress(direct(trailing), dst.clear(), data.length));
    assertTrue(e.getMessage().contains("followed by 3 more"), e.getMessage());
    byte[] twoFrames = new byte[frame.length * 2];
    System.arraycopy(frame, 0, twoFrames, 0, frame.length);
    System.arraycopy(frame, 0, twoFrames, frame.length, frame.length);
    assertThrows(
        CorruptFrameException.class,
        () -> ZstdCodec.decompress(direct(twoFrames), dst.clear(), data.length));
    byte[] badMagic = frame.clone();
    badMagic[0] ^= 1;
    assertThrows(
        CorruptFrameException.class,
        () -> ZstdCodec.decompress(direct(badMagic), dst.clear(), data.length));
    // flipped bytes in the body: either an error or (rarely) other bytes, which the digest then
    // catches;
    // never more than the declared size and never a crash
    Random r = new Random(4);
    for (int k = 0; k < 200; k++) {
      byte[] bad = frame.clone();
      int at = 12 + r.nextInt(bad.length - 12);
      bad[at] ^= (byte) (1 + r.nextInt(255));
      ByteBuffer out = ByteBuffer.allocateDirect(data.length + 4096);
      out.limit(data.length);
      try {
        ZstdCodec.decompress(direct(bad), out, data.length);
        assertEquals(data.length, out.position());
      } catch (CorruptFrameException expected) {
        // the usual outcome
      }
      out.limit(out.capacity());
      for (int i = data.length; i < out.capacity(); i++) {
        assertEquals(0, out.get(i), "nothing written past the declared size");
      }
    }
  }

  @Test
  void refusesFramesLongerThanTheBound() {
    byte[] junk = new byte[4096 + 4096];
    junk[0] = 0x28;
    junk[1] = (byte) 0xB5;
    junk[2] = 0x2F;
    junk[3] = (byte) 0xFD;
    CorruptFrameException e =
        assertThrows(
            CorruptFrameException.class,
            () -> ZstdCodec.decompress(direct(junk), ByteBuffer.allocateDirect(4096), 4096));
    assertTrue(e.getMessage().contains("longer than any frame"), e.getMessage());
  }

  @Test
  void levels() {
    assertThrows(IllegalArgumentException.class, () -> new ZstdCodec.Compressor(23));
    assertThrows(IllegalArgumentException.class, () -> new ZstdCodec.Compressor(0));
    byte[] data = new byte[1 << 16];
    Arrays.fill(data, 0, 1000, (byte) 9);
    assertTrue(compress(data, 1).length > 0);
    assertTrue(compress(data, -5).length > 0);
  }
}

package dev.lazypull.fscache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.testing.Msgs;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

class CachefilesDecoderTest {
  private static CachefilesMsg decode(byte[] b) {
    return CachefilesDecoder.decode(Msgs.wrap(b), b.length);
  }

  @Test
  void decodesOpenWithVolumeKeyNulStrippedAndBinaryCookie() {
    byte[] b = Msgs.open(7, 3, "erofs,lp-abc", "lp-abc", 42);
    CachefilesMsg.Open open = assertInstanceOf(CachefilesMsg.Open.class, decode(b));
    assertEquals(7, open.msgId());
    assertEquals(3, open.objectId());
    assertEquals("erofs,lp-abc", open.volumeKey());
    assertEquals("lp-abc", open.cookieKey());
    assertEquals(42, open.fd());
    assertEquals(32 + "erofs,lp-abc".length() + 1 + "lp-abc".length(), b.length);
  }

  @Test
  void cookieKeyKeepsEveryByte() {
    String key = "a\u00ff\u0001z";
    CachefilesMsg.Open open =
        assertInstanceOf(CachefilesMsg.Open.class, decode(Msgs.open(1, 1, "v", key, 5)));
    assertEquals(key, open.cookieKey());
    assertEquals("a\\xff\\x01z", open.printableCookieKey());
  }

  @Test
  void decodesReadAndClose() {
    CachefilesMsg.Read read =
        assertInstanceOf(CachefilesMsg.Read.class, decode(Msgs.read(9, 4, 1L << 40, 131072)));
    assertEquals(1L << 40, read.offset());
    assertEquals(131072, read.length());
    CachefilesMsg.Close close =
        assertInstanceOf(CachefilesMsg.Close.class, decode(Msgs.close(10, 4)));
    assertEquals(4, close.objectId());
  }

  @Test
  void decodesAtBufferPosition() {
    byte[] msg = Msgs.read(9, 4, 8192, 4096);
    ByteBuffer b = ByteBuffer.allocate(100).order(ByteOrder.nativeOrder());
    b.position(20);
    b.put(msg);
    b.position(20);
    CachefilesMsg.Read read =
        assertInstanceOf(CachefilesMsg.Read.class, CachefilesDecoder.decode(b, msg.length));
    assertEquals(8192, read.offset());
  }

  @Test
  void truncatedHeaderIsMalformedWithoutIds() {
    CachefilesMsg.Malformed m =
        assertInstanceOf(
            CachefilesMsg.Malformed.class, CachefilesDecoder.decode(ByteBuffer.allocate(8), 8));
    assertEquals(-1, m.msgId());
    assertEquals(-1, m.opcode());
  }

  @Test
  void lengthMismatchKeepsIdsAndOpenFdSoTheDaemonCanAnswer() {
    byte[] b = Msgs.open(5, 2, "erofs,x", "x", 77);
    ByteBuffer.wrap(b).order(ByteOrder.nativeOrder()).putInt(8, b.length + 4);
    CachefilesMsg.Malformed m = assertInstanceOf(CachefilesMsg.Malformed.class, decode(b));
    assertEquals(5, m.msgId());
    assertEquals(CachefilesMsg.OPCODE_OPEN, m.opcode());
    assertEquals(77, m.fd());
  }

  @Test
  void overflowingKeySizesAreMalformedNotAnException() {
    byte[] b = Msgs.open(5, 2, "erofs,x", "x", 77);
    ByteBuffer.wrap(b).order(ByteOrder.nativeOrder()).putInt(16, 0xfffffff0).putInt(20, 0x20);
    CachefilesMsg.Malformed m = assertInstanceOf(CachefilesMsg.Malformed.class, decode(b));
    assertEquals(77, m.fd());
    assertTrue(m.reason().contains("key sizes"), m.reason());
  }

  @Test
  void volumeKeyWithoutNulIsMalformed() {
    byte[] b = Msgs.open(5, 2, "erofs,x", "x", 77);
    b[32 + "erofs,x".length()] = 'y'; // overwrite the NUL
    CachefilesMsg.Malformed m = assertInstanceOf(CachefilesMsg.Malformed.class, decode(b));
    assertTrue(m.reason().contains("NUL"), m.reason());
  }

  @Test
  void emptyCookieAndNegativeFdAreMalformed() {
    assertInstanceOf(CachefilesMsg.Malformed.class, decode(Msgs.open(5, 2, "erofs,x", "", 77)));
    CachefilesMsg.Malformed m =
        assertInstanceOf(
            CachefilesMsg.Malformed.class, decode(Msgs.open(5, 2, "erofs,x", "x", -3)));
    assertEquals(-1, m.fd());
  }

  @Test
  void wrongSizedReadAndCloseAndUnknownOpcode() {
    byte[] read = Msgs.read(1, 1, 0, 4096);
    byte[] shortRead = new byte[24];
    System.arraycopy(read, 0, shortRead, 0, 24);
    ByteBuffer.wrap(shortRead).order(ByteOrder.nativeOrder()).putInt(8, 24);
    CachefilesMsg.Malformed m = assertInstanceOf(CachefilesMsg.Malformed.class, decode(shortRead));
    assertEquals(CachefilesMsg.OPCODE_READ, m.opcode());
    assertEquals(1, m.objectId());

    byte[] close = new byte[20];
    ByteBuffer.wrap(close).order(ByteOrder.nativeOrder()).putInt(0, 1).putInt(4, 1).putInt(8, 20);
    assertInstanceOf(CachefilesMsg.Malformed.class, decode(close));

    byte[] unknown = Msgs.close(3, 3);
    ByteBuffer.wrap(unknown).order(ByteOrder.nativeOrder()).putInt(4, 9);
    CachefilesMsg.Malformed u = assertInstanceOf(CachefilesMsg.Malformed.class, decode(unknown));
    assertEquals(9, u.opcode());
  }

  @Test
  void randomBytesNeverThrow() {
    Random rnd = new Random(1234);
    for (int i = 0; i < 200_000; i++) {
      int len = rnd.nextInt(80);
      byte[] b = new byte[len];
      rnd.nextBytes(b);
      if (len >= 16 && rnd.nextBoolean()) { // make the header plausible half the time
        ByteBuffer h = ByteBuffer.wrap(b).order(ByteOrder.nativeOrder());
        h.putInt(4, rnd.nextInt(4)).putInt(8, len);
      }
      CachefilesMsg m = CachefilesDecoder.decode(Msgs.wrap(b), len);
      if (m instanceof CachefilesMsg.Open open) {
        assertTrue(open.fd() >= 0);
      }
    }
  }
}

package dev.lazypull.nbd.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Wire formats, byte for byte, against the layouts in NetworkBlockDevice/nbd doc/proto.md. */
class NbdCodecTest {
  static byte[] bytes(ByteBuffer b) {
    byte[] out = new byte[b.remaining()];
    b.duplicate().get(out);
    return out;
  }

  static ByteBuffer hex(String h) {
    return ByteBuffer.wrap(HexFormat.of().parseHex(h.replace(" ", "")));
  }

  @Test
  void greetingIsMagicsAndFixedNewstyleNoZeroes() {
    assertEquals(
        "4e42444d41474943 49484156454f5054 0003".replace(" ", ""),
        HexFormat.of().formatHex(bytes(OptionCodec.greeting())));
  }

  @Test
  void clientFlagsBeyondTheAdvertisedOnesAreRefused() throws Exception {
    OptionCodec.decodeClientFlags(hex("00000003"));
    OptionCodec.decodeClientFlags(hex("00000000"));
    assertThrows(NbdProtocolException.class, () -> OptionCodec.decodeClientFlags(hex("00000004")));
    assertThrows(NbdProtocolException.class, () -> OptionCodec.decodeClientFlags(hex("80000001")));
  }

  @Test
  void optionHeaderNeedsIhaveopt() throws Exception {
    OptionCodec.OptionHeader h =
        OptionCodec.decodeHeader(hex("49484156454f5054 00000007 ffffffff"));
    assertEquals(7, h.option());
    assertEquals(0xffffffffL, h.length(), "lengths are unsigned");
    assertThrows(
        NbdProtocolException.class,
        () -> OptionCodec.decodeHeader(hex("4e42444d41474943 00000007 00000000")));
  }

  @Test
  void infoPayloadsAreCheckedExactly() throws Exception {
    OptionCodec.InfoRequest r = OptionCodec.decodeInfo(hex("00000004 666c6174 0002 0003 0001"));
    assertEquals("flat", r.name());
    assertEquals(List.of(3, 1), r.infoTypes());
    assertEquals("", OptionCodec.decodeInfo(hex("00000000 0000")).name());
    assertThrows(
        NbdProtocolException.class, () -> OptionCodec.decodeInfo(hex("00000005 666c6174 0000")));
    assertThrows(
        NbdProtocolException.class,
        () -> OptionCodec.decodeInfo(hex("00000004 666c6174 0002 0003")));
    assertThrows(
        NbdProtocolException.class, () -> OptionCodec.decodeInfo(hex("00000004 666c6174 0000 00")));
    assertThrows(
        NbdProtocolException.class,
        () -> OptionCodec.decodeInfo(hex("00000002 ff fe 0000")),
        "UTF-8");
    assertThrows(
        NbdProtocolException.class, () -> OptionCodec.decodeInfo(hex("00000002 6100 0000")), "NUL");
    ByteBuffer longName = ByteBuffer.allocate(4 + 4097 + 2).putInt(4097);
    longName.position(longName.capacity());
    assertThrows(
        NbdProtocolException.class, () -> OptionCodec.decodeInfo(longName.flip()), "> 4096 bytes");
  }

  @Test
  void metaContextPayloadsAreCheckedExactly() throws Exception {
    byte[] q = Nbd.BASE_ALLOCATION.getBytes(StandardCharsets.UTF_8);
    ByteBuffer ok =
        ByteBuffer.allocate(4 + 4 + 4 + q.length)
            .putInt(0)
            .putInt(1)
            .putInt(q.length)
            .put(q)
            .flip();
    OptionCodec.MetaContextRequest r = OptionCodec.decodeMetaContext(ok);
    assertEquals("", r.name());
    assertEquals(List.of(Nbd.BASE_ALLOCATION), r.queries());
    assertThrows(
        NbdProtocolException.class,
        () -> OptionCodec.decodeMetaContext(hex("00000000 7fffffff")),
        "a query count the payload cannot hold");
    assertThrows(
        NbdProtocolException.class,
        () -> OptionCodec.decodeMetaContext(hex("00000000 00000001 00000009 61")));
    assertThrows(
        NbdProtocolException.class,
        () -> OptionCodec.decodeMetaContext(hex("00000000 00000000 00")),
        "trailing bytes");
  }

  @Test
  void optionRepliesHaveTheReplyMagicAndEchoTheOption() {
    assertEquals(
        "0003e889045565a9 00000007 00000001 00000000".replace(" ", ""),
        HexFormat.of().formatHex(bytes(OptionCodec.ack(7))));
    assertEquals(
        "0003e889045565a9 00000006 00000003 0000000c 0000 0000000000001000 0103".replace(" ", ""),
        HexFormat.of().formatHex(bytes(OptionCodec.infoExport(6, 4096, 0x103))));
    assertEquals(
        "0003e889045565a9 00000007 00000003 0000000e 0003 00000001 00001000 02000000"
            .replace(" ", ""),
        HexFormat.of().formatHex(bytes(OptionCodec.infoBlockSize(7, 1, 4096, 32 << 20))));
    assertEquals(
        "0003e889045565a9 00000003 00000002 00000008 00000004 666c6174".replace(" ", ""),
        HexFormat.of().formatHex(bytes(OptionCodec.server(3, "flat"))));
    ByteBuffer err = OptionCodec.error(11, Nbd.REP_ERR_UNSUP, "é".repeat(2000));
    assertEquals(0x80000001, err.getInt(12));
    assertTrue(err.getInt(16) <= 1024, "messages are bounded");
    assertEquals(err.getInt(16) % 2, 0, "cut on a character boundary (é is two bytes)");
  }

  @Test
  void exportNameReplyPadsUnlessNoZeroes() {
    assertEquals(134, OptionCodec.exportNameReply(1, 3, true).remaining());
    ByteBuffer b = OptionCodec.exportNameReply(0x1234, 0x103, false);
    assertEquals("0000000000001234 0103".replace(" ", ""), HexFormat.of().formatHex(bytes(b)));
  }

  @Test
  void requestsDecodeAndBadMagicIsAProtocolError() throws Exception {
    NbdRequest r =
        NbdRequest.decode(hex("25609513 0008 0007 0102030405060708 0000000000001000 00002000"));
    assertEquals(Nbd.CMD_BLOCK_STATUS, r.type());
    assertEquals(Nbd.CMD_FLAG_REQ_ONE, r.flags());
    assertEquals(0x0102030405060708L, r.cookie());
    assertEquals(4096, r.offset());
    assertEquals(8192, r.length());
    assertArrayEquals(
        bytes(hex("25609513 0008 0007 0102030405060708 0000000000001000 00002000")),
        bytes(r.encode()));
    assertThrows(
        NbdProtocolException.class, () -> NbdRequest.decode(hex("67446698" + "00".repeat(24))));
    NbdRequest big =
        NbdRequest.decode(hex("25609513 0000 0000 0000000000000001 ffffffffffffff00 ffffffff"));
    assertEquals(0xffffffffL, big.length());
    assertFalse(big.within(Long.MAX_VALUE), "an offset past 2^63 is outside every export");
    assertTrue(new NbdRequest(0, 0, 1, 100, 28).within(128));
    assertFalse(new NbdRequest(0, 0, 1, 100, 29).within(128));
  }

  @Test
  void theReplyEncoderFollowsTheNegotiatedMode() {
    ReplyEncoder simple = new ReplyEncoder(false);
    ReplyEncoder structured = new ReplyEncoder(true);
    assertEquals(
        "67446698 00000000 0000000000000009".replace(" ", ""),
        HexFormat.of().formatHex(bytes(simple.ok(9))));
    assertArrayEquals(
        bytes(simple.ok(9)), bytes(structured.ok(9)), "a success without data is simple in both");
    assertEquals(
        "67446698 00000001 0000000000000009".replace(" ", ""),
        HexFormat.of().formatHex(bytes(simple.error(9, Nbd.EPERM, "read-only"))),
        "no reason in a simple reply");
    assertArrayEquals(
        bytes(ReplyCodec.error(9, Nbd.EPERM, "read-only")),
        bytes(structured.error(9, Nbd.EPERM, "read-only")),
        "an ERROR chunk with the reason");
    List<ReplyCodec.Extent> one = List.of(new ReplyCodec.Extent(4096, 3));
    assertArrayEquals(
        bytes(ReplyCodec.blockStatus(9, 1, one, true)), bytes(structured.blockStatus(9, 1, one)));
    assertThrows(IllegalStateException.class, () -> simple.blockStatus(9, 1, one));
  }

  @Test
  void replyLayouts() {
    assertEquals(
        "67446698 00000016 0000000000000009".replace(" ", ""),
        HexFormat.of().formatHex(bytes(ReplyCodec.simple(22, 9))));
    assertEquals(
        "668e33ef 0001 0000 0000000000000009 00000000".replace(" ", ""),
        HexFormat.of().formatHex(bytes(ReplyCodec.none(9))));
    assertEquals(
        "668e33ef 0000 0002 0000000000000009 0000000c 0000000000001000 00000200".replace(" ", ""),
        HexFormat.of().formatHex(bytes(ReplyCodec.hole(9, 4096, 512, false))));
    assertEquals(
        "668e33ef 0001 8001 0000000000000009 00000008 00000005 0002 6f6b".replace(" ", ""),
        HexFormat.of().formatHex(bytes(ReplyCodec.error(9, 5, "ok"))));
    assertEquals(
        "668e33ef 0001 8002 0000000000000009 0000000e 00000005 0000 0000000000000010"
            .replace(" ", ""),
        HexFormat.of().formatHex(bytes(ReplyCodec.errorOffset(9, 5, "", 16))));
    assertEquals(
        "668e33ef 0001 0005 0000000000000009 00000014 00000001 00001000 00000000 00002000 00000003"
            .replace(" ", ""),
        HexFormat.of()
            .formatHex(
                bytes(
                    ReplyCodec.blockStatus(
                        9,
                        1,
                        List.of(new ReplyCodec.Extent(4096, 0), new ReplyCodec.Extent(8192, 3)),
                        true))));
    ByteBuffer data = ReplyCodec.putDataHeader(ByteBuffer.allocate(28), 9, 4096, 100, true).flip();
    assertEquals(
        "668e33ef 0001 0001 0000000000000009 0000006c 0000000000001000".replace(" ", ""),
        HexFormat.of().formatHex(bytes(data)));
  }
}

package dev.lazypull.nbd.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The request decoder fed bytes: whole streams, every way of cutting them, and malformed input. */
class RequestDecoderTest {
  /** A READ, a WRITE with its payload, flags beside several types, an empty WRITE, a DISC. */
  static final List<NbdRequest> REQUESTS =
      List.of(
          new NbdRequest(0, Nbd.CMD_READ, 1, 4096, 512),
          new NbdRequest(Nbd.CMD_FLAG_FUA, Nbd.CMD_WRITE, 2, 0, 37),
          new NbdRequest(
              Nbd.CMD_FLAG_FUA | Nbd.CMD_FLAG_NO_HOLE, Nbd.CMD_WRITE_ZEROES, 3, 8192, 4096),
          new NbdRequest(
              Nbd.CMD_FLAG_REQ_ONE, Nbd.CMD_BLOCK_STATUS, 0xfedcba9876543210L, 0, 1L << 20),
          new NbdRequest(0xffff, Nbd.CMD_FLUSH, 5, 0, 0),
          new NbdRequest(0, Nbd.CMD_WRITE, 6, 100, 0),
          new NbdRequest(0, 0xffff, 7, -1, 0xffffffffL),
          new NbdRequest(0, Nbd.CMD_DISC, 8, 0, 0));

  /**
   * The requests on the wire, each WRITE followed by its payload (bytes that must never be taken as
   * headers).
   */
  static byte[] wire(List<NbdRequest> requests) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (NbdRequest r : requests) {
      out.writeBytes(bytes(r.encode()));
      if (r.type() == Nbd.CMD_WRITE) {
        byte[] payload = new byte[(int) r.length()];
        for (int i = 0;
            i < payload.length;
            i += 4) { // request magics: a decoder out of step would "find" them
          ByteBuffer.wrap(payload, i, Math.min(4, payload.length - i))
              .put(magicPrefix(payload.length - i));
        }
        out.writeBytes(payload);
      }
    }
    return out.toByteArray();
  }

  private static byte[] magicPrefix(int n) {
    byte[] m = ByteBuffer.allocate(4).putInt(Nbd.REQUEST_MAGIC).array();
    return n >= 4 ? m : Arrays.copyOf(m, n);
  }

  static byte[] bytes(ByteBuffer b) {
    byte[] out = new byte[b.remaining()];
    b.duplicate().get(out);
    return out;
  }

  /**
   * Feeds {@code pieces} in order, collecting every request; each piece is used up before the next.
   */
  static List<NbdRequest> feed(RequestDecoder d, List<ByteBuffer> pieces)
      throws NbdProtocolException {
    List<NbdRequest> out = new ArrayList<>();
    for (ByteBuffer piece : pieces) {
      for (NbdRequest r = d.decode(piece); r != null; r = d.decode(piece)) {
        out.add(r);
      }
      assertEquals(0, piece.remaining(), "a null means the piece is used up");
    }
    return out;
  }

  static List<ByteBuffer> cut(byte[] wire, int... at) {
    List<ByteBuffer> pieces = new ArrayList<>();
    int from = 0;
    for (int to : at) {
      pieces.add(ByteBuffer.wrap(wire, from, to - from).slice());
      from = to;
    }
    pieces.add(ByteBuffer.wrap(wire, from, wire.length - from).slice());
    return pieces;
  }

  @Test
  void aWholeStreamInOneBufferYieldsEveryRequestInOrder() throws Exception {
    RequestDecoder d = new RequestDecoder();
    assertEquals(REQUESTS, feed(d, List.of(ByteBuffer.wrap(wire(REQUESTS)))));
    assertDoesNotThrow(d::endOfInput, "the input ended between requests");
  }

  @Test
  void eachRequestIsReturnedAloneAndTheRestStaysInTheBuffer() throws Exception {
    ByteBuffer in = ByteBuffer.wrap(wire(REQUESTS));
    RequestDecoder d = new RequestDecoder();
    assertEquals(REQUESTS.get(0), d.decode(in));
    assertEquals(Nbd.REQUEST_SIZE, in.position(), "no byte of the next request is taken");
    assertEquals(REQUESTS.get(1), d.decode(in), "a WRITE once its payload has gone by");
    assertEquals(2 * Nbd.REQUEST_SIZE + 37, in.position());
  }

  @Test
  void everySplitPointOfTheStreamGivesTheSameRequests() throws Exception {
    byte[] wire = wire(REQUESTS);
    for (int i = 0; i <= wire.length; i++) {
      assertEquals(REQUESTS, feed(new RequestDecoder(), cut(wire, i)), "cut at " + i);
    }
    for (int i = 0; i <= wire.length; i += 3) { // and every pair of cut points, on a coarser grid
      for (int j = i; j <= wire.length; j += 5) {
        assertEquals(
            REQUESTS, feed(new RequestDecoder(), cut(wire, i, j)), "cut at " + i + " and " + j);
      }
    }
  }

  @Test
  void byteAtATimeAndRandomPiecesGiveTheSameRequests() throws Exception {
    byte[] wire = wire(REQUESTS);
    List<ByteBuffer> single = new ArrayList<>();
    for (byte b : wire) {
      single.add(ByteBuffer.wrap(new byte[] {b}));
    }
    RequestDecoder d = new RequestDecoder();
    assertEquals(REQUESTS, feed(d, single));
    Random rnd = new Random(1);
    for (int run = 0; run < 200; run++) {
      List<ByteBuffer> pieces = new ArrayList<>();
      for (int from = 0; from < wire.length; ) {
        int n =
            Math.min(wire.length - from, rnd.nextInt(3) == 0 ? rnd.nextInt(4) : rnd.nextInt(80));
        pieces.add(ByteBuffer.wrap(wire, from, n).slice()); // empty pieces too
        from += n;
      }
      assertEquals(
          REQUESTS,
          feed(d, pieces),
          "run " + run); // one decoder: it is back at a boundary each time
    }
  }

  @Test
  void aMaximalWritePayloadIsSkippedPieceByPieceWithoutBeingHeld() throws Exception {
    NbdRequest write = new NbdRequest(0, Nbd.CMD_WRITE, 9, 0, Nbd.MAX_PAYLOAD);
    NbdRequest read = new NbdRequest(0, Nbd.CMD_READ, 10, 0, 4096);
    RequestDecoder d = new RequestDecoder();
    assertNull(d.decode(write.encode()), "the payload is still to come");
    ByteBuffer piece = ByteBuffer.allocate(64 << 10); // the same 64 KiB handed over again and again
    for (int left = Nbd.MAX_PAYLOAD; left > piece.capacity(); left -= piece.capacity()) {
      assertNull(d.decode(piece.clear()));
      assertEquals(0, piece.remaining());
    }
    assertEquals(
        write, d.decode(piece.clear()), "the last byte of the payload completes the WRITE");
    assertEquals(read, d.decode(read.encode()));
  }

  @Test
  void aBadMagicIsAProtocolErrorAfterTheRequestsBeforeIt() throws Exception {
    byte[] good = wire(REQUESTS.subList(0, 2));
    ByteBuffer in =
        ByteBuffer.allocate(good.length + Nbd.REQUEST_SIZE)
            .put(good)
            .put(bytes(new NbdRequest(0, Nbd.CMD_READ, 3, 0, 1).encode()))
            .flip();
    in.putInt(good.length, Nbd.SIMPLE_REPLY_MAGIC); // a reply echoed back: out of step
    RequestDecoder d = new RequestDecoder();
    assertEquals(REQUESTS.get(0), d.decode(in));
    assertEquals(REQUESTS.get(1), d.decode(in));
    NbdProtocolException e = assertThrows(NbdProtocolException.class, () -> d.decode(in));
    assertTrue(e.getMessage().contains("magic"), e.getMessage());
    assertThrows(
        IllegalStateException.class,
        () -> d.decode(ByteBuffer.wrap(wire(REQUESTS))),
        "out of step for good: nothing after it is decoded");
  }

  @Test
  void aBadMagicFedByteAtATimeFailsOnTheHeadersLastByte() throws Exception {
    byte[] bad = bytes(new NbdRequest(0, Nbd.CMD_READ, 1, 0, 1).encode());
    bad[0] ^= 1;
    RequestDecoder d = new RequestDecoder();
    for (int i = 0; i < bad.length - 1; i++) {
      assertNull(d.decode(ByteBuffer.wrap(bad, i, 1)));
    }
    assertThrows(
        NbdProtocolException.class, () -> d.decode(ByteBuffer.wrap(bad, bad.length - 1, 1)));
  }

  @Test
  void aWriteLargerThanTheMaximumFailsAtItsHeaderBeforeAnyPayload() {
    for (long length : new long[] {Nbd.MAX_PAYLOAD + 1L, 0xffffffffL}) {
      RequestDecoder d = new RequestDecoder();
      ByteBuffer in = new NbdRequest(0, Nbd.CMD_WRITE, 1, 0, length).encode();
      NbdProtocolException e = assertThrows(NbdProtocolException.class, () -> d.decode(in));
      assertTrue(e.getMessage().contains("exceeds the advertised maximum"), e.getMessage());
      assertThrows(IllegalStateException.class, () -> d.decode(ByteBuffer.allocate(1)));
    }
  }

  @Test
  void aLargeReadIsNotAFramingMatter() throws Exception {
    NbdRequest huge =
        new NbdRequest(0, Nbd.CMD_READ, 1, 0, 0xffffffffL); // answered EINVAL, never a disconnect
    assertEquals(huge, new RequestDecoder().decode(huge.encode()));
  }

  @Test
  void theInputMayEndBetweenRequestsOrInsideAWritePayloadButNotInsideAHeader() throws Exception {
    byte[] wire = wire(REQUESTS.subList(0, 2)); // READ (28), WRITE (28) + 37
    RequestDecoder midHeader = new RequestDecoder();
    feed(midHeader, List.of(ByteBuffer.wrap(wire, 0, 40)));
    NbdProtocolException e = assertThrows(NbdProtocolException.class, midHeader::endOfInput);
    assertTrue(e.getMessage().contains("inside a request header"), e.getMessage());

    RequestDecoder midPayload = new RequestDecoder();
    assertEquals(REQUESTS.subList(0, 1), feed(midPayload, List.of(ByteBuffer.wrap(wire, 0, 60))));
    assertDoesNotThrow(midPayload::endOfInput, "a client gone mid-WRITE: nothing to answer");

    RequestDecoder clean = new RequestDecoder();
    feed(clean, List.of(ByteBuffer.wrap(wire)));
    assertDoesNotThrow(clean::endOfInput);
  }

  // ---- payloads kept (a writable export)
  // -----------------------------------------------------------------

  /** Payload buffers that count what is taken and given back. */
  static final class CountingBuffers implements PayloadBuffers {
    int taken;
    int given;
    long bytesOut;

    @Override
    public ByteBuffer take(int length) {
      taken++;
      bytesOut += length;
      return ByteBuffer.allocate(length);
    }

    @Override
    public void give(ByteBuffer buffer) {
      given++;
      bytesOut -= buffer.limit();
    }
  }

  /** The payload each WRITE of {@link #REQUESTS} carries on the wire. */
  private static byte[] payloadOf(NbdRequest r) {
    byte[] w = wire(List.of(r));
    return Arrays.copyOfRange(w, Nbd.REQUEST_SIZE, w.length);
  }

  private static void assertPayloadsDelivered(List<NbdRequest> got, String what) {
    assertEquals(REQUESTS.size(), got.size(), what);
    for (int i = 0; i < got.size(); i++) {
      NbdRequest want = REQUESTS.get(i);
      NbdRequest r = got.get(i);
      assertEquals(want, r.withPayload(null), what + ": request " + i);
      if (want.type() == Nbd.CMD_WRITE && want.length() > 0) {
        assertArrayEquals(payloadOf(want), bytes(r.payload()), what + ": payload of " + want);
      } else {
        assertNull(r.payload(), what + ": no payload for " + want);
      }
    }
  }

  @Test
  void withBuffersEveryWritePayloadIsDeliveredWholeAtEverySplitPoint() throws Exception {
    byte[] wire = wire(REQUESTS);
    for (int i = 0; i <= wire.length; i++) {
      CountingBuffers buffers = new CountingBuffers();
      RequestDecoder d = new RequestDecoder(buffers);
      assertPayloadsDelivered(feed(d, cut(wire, i)), "cut at " + i);
      assertEquals(1, buffers.taken, "one buffer for the one non-empty WRITE");
      assertEquals(0, buffers.given, "the receiver gives it back, not the decoder");
    }
    List<ByteBuffer> single = new ArrayList<>();
    for (byte b : wire) {
      single.add(ByteBuffer.wrap(new byte[] {b}));
    }
    assertPayloadsDelivered(
        feed(new RequestDecoder(new CountingBuffers()), single), "byte at a time");
  }

  @Test
  void flagsNeverChangeTheCommandAWriteWithFuaCarriesItsPayload() throws Exception {
    NbdRequest fua =
        new NbdRequest(Nbd.CMD_FLAG_FUA | Nbd.CMD_FLAG_NO_HOLE, Nbd.CMD_WRITE, 1, 512, 3);
    ByteBuffer in = ByteBuffer.allocate(31).put(fua.encode()).put(new byte[] {7, 8, 9}).flip();
    NbdRequest r = new RequestDecoder(new CountingBuffers()).decode(in);
    assertEquals(Nbd.CMD_WRITE, r.type());
    assertTrue(r.has(Nbd.CMD_FLAG_FUA));
    assertArrayEquals(new byte[] {7, 8, 9}, bytes(r.payload()));
  }

  @Test
  void aPayloadCutOffByTheEndOfInputGoesBack() throws Exception {
    CountingBuffers buffers = new CountingBuffers();
    RequestDecoder d = new RequestDecoder(buffers);
    byte[] wire = wire(REQUESTS.subList(0, 2));
    assertEquals(1, feed(d, List.of(ByteBuffer.wrap(wire, 0, 60))).size());
    assertEquals(1, buffers.taken);
    d.endOfInput();
    assertEquals(1, buffers.given);
    assertEquals(0, buffers.bytesOut, "given back with the limit it was taken with");
    d.close();
    assertEquals(1, buffers.given, "once");
  }

  @Test
  void anOversizedWriteTakesNoBuffer() {
    CountingBuffers buffers = new CountingBuffers();
    RequestDecoder d = new RequestDecoder(buffers);
    assertThrows(
        NbdProtocolException.class,
        () -> d.decode(new NbdRequest(0, Nbd.CMD_WRITE, 1, 0, Nbd.MAX_PAYLOAD + 1L).encode()));
    assertEquals(0, buffers.taken);
  }
}

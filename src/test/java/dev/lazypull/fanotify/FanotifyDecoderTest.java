package dev.lazypull.fanotify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.fanotify.FanotifyMessage.Event;
import dev.lazypull.fanotify.FanotifyMessage.Malformed;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class FanotifyDecoderTest {
  private static List<FanotifyMessage> decode(byte[] b) {
    return FanotifyDecoder.decode(ByteBuffer.wrap(b), b.length);
  }

  private static List<FanotifyMessage> decode(EventBytes e) {
    return decode(e.bytes());
  }

  @Test
  void decodesAPreAccessEventWithItsRange() {
    List<FanotifyMessage> m = decode(new EventBytes().preAccess(7, 1234, 1L << 40, 262144));
    assertEquals(1, m.size());
    Event e = assertInstanceOf(Event.class, m.get(0));
    assertEquals(7, e.fd());
    assertEquals(1234, e.pid());
    assertEquals(EventBytes.FAN_PRE_ACCESS, e.mask());
    assertTrue(e.hasRange());
    assertEquals(1L << 40, e.offset());
    assertEquals(262144, e.count());
    assertEquals((1L << 40) + 262144, e.end());
    assertTrue(e.isPermission());
    assertFalse(e.isOverflow());
  }

  @Test
  void decodesSeveralEventsInOneRead() {
    EventBytes bytes = new EventBytes();
    for (int i = 0; i < 50; i++) {
      bytes.preAccess(10 + i, 100 + i, i * 4096L, 4096);
    }
    List<FanotifyMessage> m = decode(bytes);
    assertEquals(50, m.size());
    for (int i = 0; i < 50; i++) {
      Event e = assertInstanceOf(Event.class, m.get(i));
      assertEquals(10 + i, e.fd());
      assertEquals(100 + i, e.pid());
      assertEquals(i * 4096L, e.offset());
    }
  }

  @Test
  void skipsOtherInfoRecordsByTheirLength() {
    // a pidfd record (type 4, 8 bytes), an unknown type with a long payload, then the range
    EventBytes bytes =
        new EventBytes()
            .event(
                EventBytes.FAN_PRE_ACCESS,
                5,
                9,
                EventBytes.record(4, 8, 8),
                EventBytes.record(200, 36, 36),
                EventBytes.range(8192, 12288));
    Event e = assertInstanceOf(Event.class, decode(bytes).get(0));
    assertTrue(e.hasRange());
    assertEquals(8192, e.offset());
    assertEquals(12288, e.count());
  }

  @Test
  void eventWithoutRecordsHasNoRange() {
    Event e = assertInstanceOf(Event.class, decode(new EventBytes().event(0x20000, 4, 1)).get(0));
    assertFalse(e.hasRange());
    assertEquals(0, e.offset());
    assertEquals(0, e.count());
    assertTrue(e.isPermission(), "FAN_ACCESS_PERM");
  }

  @Test
  void overflowEventHasNoFd() {
    Event e = assertInstanceOf(Event.class, decode(new EventBytes().event(0x4000, -1, 0)).get(0));
    assertTrue(e.isOverflow());
    assertFalse(e.isPermission());
    assertEquals(-1, e.fd());
  }

  @Test
  void decodesAtTheBufferPositionAndLeavesItAlone() {
    byte[] ev = new EventBytes().preAccess(3, 2, 4096, 4096).bytes();
    ByteBuffer b = ByteBuffer.allocateDirect(200).order(ByteOrder.BIG_ENDIAN);
    b.position(40);
    b.put(ev);
    b.position(40);
    Event e = assertInstanceOf(Event.class, FanotifyDecoder.decode(b, ev.length).get(0));
    assertEquals(3, e.fd());
    assertEquals(4096, e.offset());
    assertEquals(40, b.position());
    assertEquals(ByteOrder.BIG_ENDIAN, b.order());
  }

  @Test
  void emptyReadIsNoMessagesAndALengthOutsideTheBufferIsACallerBug() {
    assertTrue(FanotifyDecoder.decode(ByteBuffer.allocate(8), 0).isEmpty());
    assertThrows(
        IllegalArgumentException.class, () -> FanotifyDecoder.decode(ByteBuffer.allocate(8), 9));
  }

  @Test
  void zeroLengthRecordIsMalformedWithItsFdAndTheNextEventStillDecodes() {
    EventBytes bytes =
        new EventBytes()
            .event(EventBytes.FAN_PRE_ACCESS, 11, 1, EventBytes.record(4, 0, 8))
            .preAccess(12, 1, 0, 4096);
    List<FanotifyMessage> m = decode(bytes);
    assertEquals(2, m.size());
    Malformed bad = assertInstanceOf(Malformed.class, m.get(0));
    assertEquals(11, bad.fd());
    assertEquals(EventBytes.FAN_PRE_ACCESS, bad.mask());
    assertTrue(bad.reason().contains("length 0"), bad.reason());
    assertEquals(12, assertInstanceOf(Event.class, m.get(1)).fd());
  }

  @Test
  void recordOverrunningItsEventIsMalformed() {
    Malformed bad =
        assertInstanceOf(
            Malformed.class,
            decode(
                    new EventBytes()
                        .event(EventBytes.FAN_PRE_ACCESS, 6, 1, EventBytes.record(4, 40, 8)))
                .get(0));
    assertEquals(6, bad.fd());
    assertTrue(bad.reason().contains("overruns"), bad.reason());
  }

  @Test
  void truncatedRecordHeaderIsMalformed() {
    Malformed bad =
        assertInstanceOf(
            Malformed.class,
            decode(new EventBytes().event(EventBytes.FAN_PRE_ACCESS, 6, 1, new byte[] {6, 0}))
                .get(0));
    assertEquals(6, bad.fd());
  }

  @Test
  void badRangeRecordsAreMalformed() {
    byte[] shortRange = EventBytes.record(FanotifyDecoder.INFO_TYPE_RANGE, 16, 16);
    assertEquals(
        8,
        assertInstanceOf(
                Malformed.class,
                decode(new EventBytes().event(EventBytes.FAN_PRE_ACCESS, 8, 1, shortRange)).get(0))
            .fd());
    Malformed two =
        assertInstanceOf(
            Malformed.class,
            decode(
                    new EventBytes()
                        .event(
                            EventBytes.FAN_PRE_ACCESS,
                            8,
                            1,
                            EventBytes.range(0, 4096),
                            EventBytes.range(4096, 4096)))
                .get(0));
    assertTrue(two.reason().contains("two range"), two.reason());
    Malformed negative =
        assertInstanceOf(
            Malformed.class, decode(new EventBytes().preAccess(8, 1, -4096, 4096)).get(0));
    assertEquals(8, negative.fd());
    Malformed wraps =
        assertInstanceOf(
            Malformed.class,
            decode(new EventBytes().preAccess(8, 1, Long.MAX_VALUE - 4095, 8192)).get(0));
    assertTrue(wraps.reason().contains("out of bounds"), wraps.reason());
    assertInstanceOf(
        Event.class, decode(new EventBytes().preAccess(8, 1, Long.MAX_VALUE - 4096, 4096)).get(0));
  }

  @Test
  void wrongVersionLosesOnlyItsOwnFdAndDecodingGoesOn() {
    EventBytes bytes =
        new EventBytes()
            .raw(EventBytes.metadata(24, 4, 24, EventBytes.FAN_PRE_ACCESS, 9, 1))
            .preAccess(10, 1, 0, 4096);
    List<FanotifyMessage> m = decode(bytes);
    Malformed bad = assertInstanceOf(Malformed.class, m.get(0));
    assertEquals(-1, bad.fd(), "another version's layout: its fd field is unknown");
    assertTrue(bad.reason().contains("version 4"), bad.reason());
    assertEquals(10, assertInstanceOf(Event.class, m.get(1)).fd());
  }

  @Test
  void wrongMetadataLenKeepsTheFd() {
    Malformed bad =
        assertInstanceOf(
            Malformed.class,
            decode(
                    new EventBytes()
                        .raw(
                            EventBytes.metadata(48, 3, 28, EventBytes.FAN_PRE_ACCESS, 9, 1),
                            EventBytes.range(0, 4096)))
                .get(0));
    assertEquals(9, bad.fd());
    assertTrue(bad.reason().contains("metadata_len 28"), bad.reason());
  }

  @Test
  void zeroEventLenEndsDecodingWithTheFdInsteadOfLooping() {
    EventBytes bytes =
        new EventBytes()
            .preAccess(3, 1, 0, 4096)
            .raw(EventBytes.metadata(0, 3, 24, EventBytes.FAN_PRE_ACCESS, 4, 1))
            .preAccess(5, 1, 0, 4096);
    List<FanotifyMessage> m = decode(bytes);
    assertEquals(2, m.size());
    assertEquals(3, assertInstanceOf(Event.class, m.get(0)).fd());
    Malformed bad = assertInstanceOf(Malformed.class, m.get(1));
    assertEquals(4, bad.fd());
    assertTrue(bad.reason().contains("event_len 0"), bad.reason());
  }

  @Test
  void eventLongerThanTheReadIsMalformedWithItsFd() {
    byte[] whole = new EventBytes().preAccess(3, 1, 0, 4096).preAccess(21, 1, 0, 4096).bytes();
    List<FanotifyMessage> m = decode(Arrays.copyOf(whole, whole.length - 10));
    assertEquals(2, m.size());
    assertInstanceOf(Event.class, m.get(0));
    Malformed cut = assertInstanceOf(Malformed.class, m.get(1));
    assertEquals(21, cut.fd());
  }

  @Test
  void truncatedMetadataKeepsTheFdWhenItsBytesArePresent() {
    byte[] whole = new EventBytes().preAccess(3, 1, 0, 4096).preAccess(22, 1, 0, 4096).bytes();
    List<FanotifyMessage> m = decode(Arrays.copyOf(whole, 48 + 20));
    assertEquals(22, assertInstanceOf(Malformed.class, m.get(1)).fd(), "fd field complete");
    m = decode(Arrays.copyOf(whole, 48 + 19));
    assertEquals(-1, assertInstanceOf(Malformed.class, m.get(1)).fd(), "fd field cut");
    m = decode(Arrays.copyOf(whole, 48 + 3));
    assertEquals(-1, assertInstanceOf(Malformed.class, m.get(1)).fd());
  }

  @Test
  void garbageNeverThrowsAndNeverLoops() {
    Random rnd = new Random(42);
    for (int i = 0; i < 10_000; i++) {
      byte[] b = new byte[rnd.nextInt(300)];
      rnd.nextBytes(b);
      List<FanotifyMessage> m = decode(b);
      assertTrue(m.size() <= b.length / FanotifyDecoder.METADATA_LEN + 1);
      assertEquals(b.length == 0, m.isEmpty());
    }
  }
}

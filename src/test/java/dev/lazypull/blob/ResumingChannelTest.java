package dev.lazypull.blob;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ReadableByteChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;

class ResumingChannelTest {
  private static final byte[] DATA = new byte[20_000];

  static {
    new Random(42).nextBytes(DATA);
  }

  /**
   * A transient failure, and the kind a test declares permanent (a subclass of it must propagate
   * too).
   */
  static class Refused extends IOException {
    Refused(String m) {
      super(m);
    }
  }

  static final class RefusedForGood extends Refused {
    RefusedForGood(String m) {
      super(m);
    }
  }

  /**
   * Serves {@code DATA[from, from+count)} a few bytes per read, then fails with {@code fault}, or
   * ends (returns -1) when {@code fault} is null.
   */
  static final class Stream implements ReadableByteChannel, BlobSource.Served {
    private int pos;
    private final int end;
    private final IOException fault;
    private final int piece;
    boolean open = true;
    IOException onClose;
    boolean mirror;
    String server;

    Stream(long from, long count, IOException fault) {
      this.pos = (int) from;
      this.end = (int) (from + count);
      this.fault = fault;
      this.piece = 97;
    }

    Stream servedBy(boolean mirror, String server) {
      this.mirror = mirror;
      this.server = server;
      return this;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
      if (!open) {
        throw new ClosedChannelException();
      }
      if (pos == end) {
        if (fault != null) {
          throw fault;
        }
        return -1;
      }
      int n = Math.min(Math.min(piece, end - pos), dst.remaining());
      dst.put(DATA, pos, n);
      pos += n;
      return n;
    }

    @Override
    public boolean isOpen() {
      return open;
    }

    @Override
    public void close() throws IOException {
      open = false;
      if (onClose != null) {
        throw onClose;
      }
    }

    @Override
    public boolean fromMirror() {
      return mirror;
    }

    @Override
    public String servedBy() {
      return server;
    }
  }

  /** Records every reopen; serves each whole unless {@code next} says otherwise. */
  static final class Reopens implements ResumingChannel.Opener {
    final List<long[]> calls = new ArrayList<>();
    final List<Stream> opened = new ArrayList<>();
    BiFunction<Long, Long, Stream> next = (off, len) -> new Stream(off, len, null);

    @Override
    public ReadableByteChannel open(long offset, long length) {
      calls.add(new long[] {offset, length});
      Stream s = next.apply(offset, length);
      opened.add(s);
      return s;
    }
  }

  private static ResumingChannel channel(
      ReadableByteChannel first, Reopens opener, long offset, long length, int maxResumes) {
    return new ResumingChannel(
        first, opener, offset, length, maxResumes, Refused.class, "test blob");
  }

  /** Reads to the end through a buffer of {@code bufSize}, checking no read returns 0. */
  private static byte[] readAll(ReadableByteChannel ch, int bufSize) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteBuffer buf = ByteBuffer.allocate(bufSize);
    int n;
    while ((n = ch.read(buf.clear())) >= 0) {
      assertTrue(n > 0, "a read with room in the buffer returned 0");
      out.write(buf.array(), 0, n);
    }
    return out.toByteArray();
  }

  private static byte[] slice(long offset, long length) {
    return Arrays.copyOfRange(DATA, (int) offset, (int) (offset + length));
  }

  @Test
  void aResetMidStreamIsResumedExactlyWhereTheBytesStopped() throws IOException {
    Reopens opener = new Reopens();
    Stream first = new Stream(1000, 1234, new IOException("connection reset"));
    try (ResumingChannel ch = channel(first, opener, 1000, 5000, 3)) {
      assertArrayEquals(slice(1000, 5000), readAll(ch, 333), "no byte repeated or skipped");
    }
    assertEquals(1, opener.calls.size());
    assertArrayEquals(
        new long[] {2234, 3766}, opener.calls.get(0), "reopened at offset+delivered for the rest");
    assertFalse(first.isOpen(), "the broken stream was closed before reopening");
  }

  @Test
  void aPrematureEndOfStreamIsResumedLikeAReset() throws IOException {
    Reopens opener = new Reopens();
    Stream first = new Stream(0, 100, null); // ends cleanly, 900 bytes short
    try (ResumingChannel ch = channel(first, opener, 0, 1000, 1)) {
      assertArrayEquals(slice(0, 1000), readAll(ch, 4096));
    }
    assertEquals(1, opener.calls.size());
    assertArrayEquals(new long[] {100, 900}, opener.calls.get(0));
  }

  @Test
  void everyBreakResumesFromItsOwnPositionUntilTheLimit() throws IOException {
    Reopens opener = new Reopens();
    // every stream, the first included, breaks after 700 bytes: 10_000 bytes need 14 reopens
    opener.next =
        (off, len) ->
            new Stream(off, Math.min(700, len), len > 700 ? new IOException("reset") : null);
    Stream first = new Stream(5000, 700, new IOException("reset"));
    try (ResumingChannel ch = channel(first, opener, 5000, 10_000, 14)) {
      assertArrayEquals(slice(5000, 10_000), readAll(ch, 1000));
    }
    assertEquals(14, opener.calls.size());
    for (int k = 0; k < 14; k++) {
      long done = 700L * (k + 1);
      assertArrayEquals(
          new long[] {5000 + done, 10_000 - done}, opener.calls.get(k), "reopen " + k);
    }
    assertTrue(
        opener.opened.subList(0, 13).stream().noneMatch(Stream::isOpen),
        "each broken stream closed");
  }

  @Test
  void afterMaxResumesTheLastFailurePropagates() throws IOException {
    Reopens opener = new Reopens();
    List<IOException> faults = new ArrayList<>();
    opener.next =
        (off, len) -> {
          IOException e = new IOException("reset " + faults.size());
          faults.add(e);
          return new Stream(off, 10, e);
        };
    Stream first = new Stream(0, 10, new IOException("first reset"));
    ResumingChannel ch = channel(first, opener, 0, 1000, 3);
    ByteArrayOutputStream got = new ByteArrayOutputStream();
    ByteBuffer buf = ByteBuffer.allocate(64);
    IOException e =
        assertThrows(
            IOException.class,
            () -> {
              while (ch.read(buf.clear()) > 0) {
                got.write(buf.array(), 0, buf.position());
              }
            });
    assertEquals(3, opener.calls.size(), "exactly maxResumes reopens");
    assertSame(faults.get(2), e, "the failure after the last resume is the one thrown");
    assertArrayEquals(
        slice(0, 40), got.toByteArray(), "what was handed out before giving up is still exact");
    assertArrayEquals(new long[] {30, 970}, opener.calls.get(2));
  }

  @Test
  void noResumesAllowedMeansTheFirstFailurePropagates() {
    Reopens opener = new Reopens();
    IOException reset = new IOException("reset");
    ResumingChannel ch = channel(new Stream(0, 0, reset), opener, 0, 10, 0);
    assertSame(reset, assertThrows(IOException.class, () -> ch.read(ByteBuffer.allocate(10))));
    assertEquals(0, opener.calls.size());
  }

  @Test
  void permanentErrorsAndTheirSubclassesAreNotResumed() {
    for (IOException permanent : List.of(new Refused("404"), new RefusedForGood("403"))) {
      Reopens opener = new Reopens();
      ResumingChannel ch = channel(new Stream(0, 50, permanent), opener, 0, 100, 5);
      ByteBuffer buf = ByteBuffer.allocate(100);
      IOException e =
          assertThrows(
              IOException.class,
              () -> {
                while (ch.read(buf) > 0) {
                  // drain until the failure
                }
              });
      assertSame(permanent, e);
      assertEquals(0, opener.calls.size(), permanent + " must not be retried");
      assertEquals(50, buf.position(), "the bytes before the failure were delivered");
    }
  }

  @Test
  void anInterruptedReaderIsNotResumed() {
    Reopens opener = new Reopens();
    IOException reset = new IOException("reset");
    ResumingChannel ch = channel(new Stream(0, 0, reset), opener, 0, 100, 5);
    Thread.currentThread().interrupt();
    try {
      assertSame(reset, assertThrows(IOException.class, () -> ch.read(ByteBuffer.allocate(10))));
      assertTrue(Thread.currentThread().isInterrupted(), "the interrupt is left for the caller");
    } finally {
      Thread.interrupted();
    }
    assertEquals(0, opener.calls.size());
  }

  @Test
  void endOfRangeZeroLengthAndEmptyBuffers() throws IOException {
    Reopens opener = new Reopens();
    Stream first = new Stream(10, 20, null);
    ResumingChannel ch = channel(first, opener, 10, 20, 3);
    assertEquals(0, ch.read(ByteBuffer.allocate(0)), "no room: nothing read, nothing opened");
    assertArrayEquals(slice(10, 20), readAll(ch, 7));
    assertEquals(-1, ch.read(ByteBuffer.allocate(10)), "still the end");
    assertEquals(0, opener.calls.size(), "the end of the range is not a premature end");

    Stream untouched = new Stream(0, 0, new IOException("must not be read"));
    ResumingChannel empty = channel(untouched, opener, 0, 0, 3);
    assertEquals(-1, empty.read(ByteBuffer.allocate(10)), "a zero-length range ends at once");
    assertEquals(0, opener.calls.size());
  }

  @Test
  void servedByFollowsTheStreamAndFromMirrorSticks() throws IOException {
    Reopens opener = new Reopens();
    opener.next = (off, len) -> new Stream(off, len, null).servedBy(false, "origin");
    Stream first = new Stream(0, 300, new IOException("mirror reset")).servedBy(true, "mirror m1");
    ResumingChannel ch = channel(first, opener, 0, 1000, 1);
    assertTrue(ch.fromMirror());
    assertEquals("mirror m1", ch.servedBy());
    assertArrayEquals(slice(0, 1000), readAll(ch, 512));
    assertEquals("origin", ch.servedBy(), "the last endpoint that served some of the bytes");
    assertTrue(ch.fromMirror(), "part of the bytes came from a mirror");

    ResumingChannel plain =
        new ResumingChannel(
            Channels.newChannel(new ByteArrayInputStream(new byte[5])),
            opener,
            0,
            5,
            0,
            Refused.class,
            "blob x");
    assertFalse(plain.fromMirror());
    assertEquals(
        "blob x", plain.servedBy(), "a stream that does not say falls back to the channel's name");
  }

  @Test
  void aBrokenStreamThatFailsToCloseIsStillResumedAndCloseClosesTheCurrentOne() throws IOException {
    Reopens opener = new Reopens();
    Stream first = new Stream(0, 100, new IOException("reset"));
    first.onClose = new IOException("close failed too");
    ResumingChannel ch = channel(first, opener, 0, 400, 1);
    assertArrayEquals(slice(0, 400), readAll(ch, 128));
    Stream second = opener.opened.get(0);
    assertTrue(second.isOpen());
    assertTrue(ch.isOpen());
    ch.close();
    assertFalse(ch.isOpen());
    assertFalse(second.isOpen(), "close reaches the stream in use");
    int opened = opener.opened.size();
    assertThrows(ClosedChannelException.class, () -> ch.read(ByteBuffer.allocate(1)));
    assertEquals(opened, opener.opened.size(), "a read after close opens nothing");
  }
}

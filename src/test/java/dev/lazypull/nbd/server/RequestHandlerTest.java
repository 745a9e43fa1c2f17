package dev.lazypull.nbd.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.nbd.device.SegmentDevice;
import dev.lazypull.nbd.protocol.ExportInfo;
import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.nbd.protocol.NbdRequest;
import dev.lazypull.nbd.protocol.PayloadBuffers;
import dev.lazypull.nbd.protocol.ReplyEncoder;
import dev.lazypull.sys.OnceLogger;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;

/**
 * The handler on its own, requests in and reply bytes out (no socket, no threads): dispatch by
 * command type whatever the flags, each command's own flag rules, and exactly one final reply per
 * request.
 */
class RequestHandlerTest {
  static final int SIZE = 64 << 10;
  static final int DATA_AT = 4096;
  private final byte[] data = new byte[8192];
  private final ExportDevice device;
  private final NbdStats stats = new NbdStats();
  private final Replies out = new Replies();
  private final AtomicInteger done = new AtomicInteger();

  RequestHandlerTest() {
    for (int i = 0; i < data.length; i++) {
      data[i] = (byte) (i * 31 + 7);
    }
    device =
        new SegmentDevice(
            SIZE,
            List.of(new SegmentDevice.Segment(DATA_AT, data.length, SegmentDevice.bytes(data), 0)));
  }

  /** The connection's write side: keeps what is written. */
  static final class Replies implements NbdTransport {
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

    @Override
    public int read(ByteBuffer dst) {
      return -1;
    }

    @Override
    public synchronized void write(ByteBuffer... srcs) {
      for (ByteBuffer b : srcs) {
        byte[] a = new byte[b.remaining()];
        b.get(a);
        bytes.writeBytes(a);
      }
    }

    /** Everything written since the last call. */
    synchronized ByteBuffer take() {
      ByteBuffer b = ByteBuffer.wrap(bytes.toByteArray());
      bytes.reset();
      return b;
    }

    @Override
    public void close() {}

    @Override
    public String peer() {
      return "test";
    }
  }

  private final ServerContext ctx =
      new ServerContext() {
        private final OnceLogger log =
            new OnceLogger(Logger.getLogger(RequestHandlerTest.class.getName()));

        @Override
        public ExportDevice device() {
          return device;
        }

        @Override
        public ExportInfo export() {
          return new ExportInfo("t", "", SIZE);
        }

        @Override
        public Executor replies() {
          return Runnable::run;
        }

        @Override
        public Duration readDeadline() {
          return Duration.ofSeconds(5);
        }

        @Override
        public int maxInflight() {
          return 4;
        }

        @Override
        public NbdStats stats() {
          return stats;
        }

        @Override
        public OnceLogger log() {
          return log;
        }

        @Override
        public PayloadBuffers payloads() {
          return null; // read-only: payloads are skipped
        }

        @Override
        public ScheduledFuture<?> scheduleHandshakeDeadline(NbdConnection c) {
          throw new AssertionError("no handshake here");
        }

        @Override
        public void closed(NbdConnection c) {
          throw new AssertionError("no connection here");
        }
      };

  private RequestHandler handler(boolean structured, int metaContextId) {
    return new RequestHandler(
        ctx,
        new ReplySink(out),
        new ReplyEncoder(structured),
        metaContextId,
        done::incrementAndGet,
        "test");
  }

  record Simple(int error, long cookie, byte[] data) {}

  record Chunk(int flags, int type, long cookie, ByteBuffer payload) {}

  /** Handles {@code r} and decodes the one simple reply it wrote (with any data after it). */
  private Simple simple(RequestHandler h, NbdRequest r) {
    int before = done.get();
    h.handle(r);
    assertEquals(before + 1, done.get(), r + ": one final reply");
    ByteBuffer b = out.take();
    assertEquals(Nbd.SIMPLE_REPLY_MAGIC, b.getInt(), r + ": a simple reply");
    int error = b.getInt();
    long cookie = b.getLong();
    byte[] rest = new byte[b.remaining()];
    b.get(rest);
    return new Simple(error, cookie, rest);
  }

  /** Handles {@code r} and decodes the structured chunks it wrote, the last one DONE. */
  private List<Chunk> chunks(RequestHandler h, NbdRequest r) {
    int before = done.get();
    h.handle(r);
    assertEquals(before + 1, done.get(), r + ": one final reply");
    ByteBuffer b = out.take();
    List<Chunk> chunks = new ArrayList<>();
    while (b.hasRemaining()) {
      assertEquals(Nbd.STRUCTURED_REPLY_MAGIC, b.getInt(), r + ": a structured chunk");
      int flags = Short.toUnsignedInt(b.getShort());
      int type = Short.toUnsignedInt(b.getShort());
      long cookie = b.getLong();
      int length = b.getInt();
      ByteBuffer payload = b.slice().limit(length);
      b.position(b.position() + payload.limit());
      chunks.add(new Chunk(flags, type, cookie, payload));
      assertEquals(
          (flags & Nbd.REPLY_FLAG_DONE) != 0,
          !b.hasRemaining(),
          r + ": DONE on the last chunk only");
    }
    return chunks;
  }

  @Test
  void refusedCommandsAreRefusedWhateverTheirFlags() {
    RequestHandler h = handler(false, 0);
    int[] flagSets = {
      0,
      Nbd.CMD_FLAG_FUA,
      Nbd.CMD_FLAG_NO_HOLE,
      Nbd.CMD_FLAG_FUA | Nbd.CMD_FLAG_NO_HOLE | Nbd.CMD_FLAG_FAST_ZERO,
      Nbd.CMD_FLAG_DF | Nbd.CMD_FLAG_REQ_ONE,
      0xffff
    };
    long cookie = 0;
    for (int type : new int[] {Nbd.CMD_WRITE, Nbd.CMD_TRIM, Nbd.CMD_WRITE_ZEROES}) {
      for (int flags : flagSets) {
        NbdRequest r = new NbdRequest(flags, type, ++cookie, 0, 4096);
        Simple s = simple(h, r);
        assertEquals(Nbd.EPERM, s.error(), r.toString());
        assertEquals(cookie, s.cookie());
      }
    }
    assertEquals(3 * flagSets.length, stats.writesRefused.sum());
    assertEquals(0, stats.invalidRequests.sum(), "never EINVAL for a flag");
  }

  @Test
  void fuaIsIgnoredEverywhereAndOtherFlagsOnlyWhereTheCommandTakesThem() {
    RequestHandler h = handler(false, 0);
    Simple read = simple(h, new NbdRequest(Nbd.CMD_FLAG_FUA, Nbd.CMD_READ, 1, DATA_AT, 100));
    assertEquals(0, read.error());
    assertArrayEquals(Arrays.copyOf(data, 100), read.data());
    assertEquals(0, simple(h, new NbdRequest(Nbd.CMD_FLAG_FUA, Nbd.CMD_FLUSH, 2, 0, 0)).error());
    assertEquals(
        0,
        simple(h, new NbdRequest(0xffff, Nbd.CMD_FLUSH, 3, 0, 0)).error(),
        "FLUSH takes any flags");
    assertEquals(
        0, simple(h, new NbdRequest(Nbd.CMD_FLAG_FUA, Nbd.CMD_CACHE, 4, DATA_AT, 10)).error());
    Object[][] invalid = {
      {Nbd.CMD_READ, Nbd.CMD_FLAG_NO_HOLE, "NO_HOLE on a READ"},
      {Nbd.CMD_READ, Nbd.CMD_FLAG_DF, "DF without structured replies"},
      {Nbd.CMD_READ, Nbd.CMD_FLAG_REQ_ONE | Nbd.CMD_FLAG_FUA, "REQ_ONE on a READ"},
      {Nbd.CMD_CACHE, Nbd.CMD_FLAG_DF, "DF on a CACHE"},
      {Nbd.CMD_BLOCK_STATUS, Nbd.CMD_FLAG_FUA, "BLOCK_STATUS without a meta context"},
      {42, 0, "unknown command"},
      {42, Nbd.CMD_FLAG_FUA, "unknown command with FUA"},
    };
    for (Object[] k : invalid) {
      Simple s = simple(h, new NbdRequest((int) k[1], (int) k[0], 9, 0, 10));
      assertEquals(Nbd.EINVAL, s.error(), (String) k[2]);
      assertEquals(0, s.data().length);
    }
    assertEquals(invalid.length, stats.invalidRequests.sum());
  }

  @Test
  void structuredRepliesTakeDfAndReqOneBesideFua() {
    RequestHandler h = handler(true, Negotiator.BASE_ALLOCATION_ID);
    List<Chunk> df =
        chunks(
            h, new NbdRequest(Nbd.CMD_FLAG_DF | Nbd.CMD_FLAG_FUA, Nbd.CMD_READ, 1, 0, 2 * DATA_AT));
    assertEquals(1, df.size(), "DF: one chunk, zeros included");
    assertEquals(Nbd.REPLY_TYPE_OFFSET_DATA, df.get(0).type());
    assertEquals(0, df.get(0).payload().getLong(0));
    byte[] got = new byte[2 * DATA_AT];
    df.get(0).payload().position(8).get(got);
    byte[] want = new byte[2 * DATA_AT];
    System.arraycopy(data, 0, want, DATA_AT, DATA_AT);
    assertArrayEquals(want, got);

    List<Chunk> holes = chunks(h, new NbdRequest(0, Nbd.CMD_READ, 2, 0, 2 * DATA_AT));
    assertEquals(
        List.of(Nbd.REPLY_TYPE_OFFSET_HOLE, Nbd.REPLY_TYPE_OFFSET_DATA),
        holes.stream().map(Chunk::type).toList(),
        "without DF the zeros go as a hole");

    List<Chunk> bs =
        chunks(
            h,
            new NbdRequest(
                Nbd.CMD_FLAG_REQ_ONE | Nbd.CMD_FLAG_FUA, Nbd.CMD_BLOCK_STATUS, 3, 0, SIZE));
    assertEquals(1, bs.size());
    assertEquals(Nbd.REPLY_TYPE_BLOCK_STATUS, bs.get(0).type());
    ByteBuffer p = bs.get(0).payload();
    assertEquals(12, p.remaining(), "REQ_ONE: one extent");
    assertEquals(Negotiator.BASE_ALLOCATION_ID, p.getInt());
    assertEquals(DATA_AT, p.getInt());
    assertEquals(Nbd.STATE_HOLE | Nbd.STATE_ZERO, p.getInt());

    List<Chunk> refused =
        chunks(h, new NbdRequest(Nbd.CMD_FLAG_NO_HOLE, Nbd.CMD_WRITE_ZEROES, 4, 0, 10));
    assertEquals(Nbd.REPLY_TYPE_ERROR, refused.get(0).type());
    ByteBuffer error = refused.get(0).payload();
    assertEquals(Nbd.EPERM, error.getInt());
    byte[] why = new byte[Short.toUnsignedInt(error.getShort())];
    error.get(why);
    assertTrue(
        new String(why, StandardCharsets.UTF_8).contains("read-only"), "the reason goes along");
    assertEquals(
        List.of(2L, 1L, 1L),
        List.of(stats.reads.sum(), stats.blockStatus.sum(), stats.writesRefused.sum()));
  }

  @Test
  void rangesAreCheckedForEveryCommandThatHasOne() {
    RequestHandler h = handler(true, Negotiator.BASE_ALLOCATION_ID);
    for (int type : new int[] {Nbd.CMD_READ, Nbd.CMD_CACHE, Nbd.CMD_BLOCK_STATUS}) {
      for (long[] range : new long[][] {{0, 0}, {SIZE - 1, 2}, {-4096, 4096}}) {
        List<Chunk> c = chunks(h, new NbdRequest(0, type, 7, range[0], range[1]));
        assertEquals(
            Nbd.REPLY_TYPE_ERROR,
            c.get(0).type(),
            Nbd.commandName(type) + " " + Arrays.toString(range));
        assertEquals(Nbd.EINVAL, c.get(0).payload().getInt(0));
      }
    }
  }
}

package dev.lazypull.nbd.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.fetch.BlobCacheDir;
import dev.lazypull.fetch.BlobCacheFile;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.image.Descriptor;
import dev.lazypull.nbd.device.SegmentDevice;
import dev.lazypull.nbd.protocol.ExportInfo;
import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.nbd.protocol.NbdRequest;
import dev.lazypull.sys.AlignedBuffers;
import dev.lazypull.sys.Posix;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.MemoryBlobSource;
import dev.lazypull.testing.NbdTestClient;
import dev.lazypull.testing.NbdTestClient.Chunk;
import dev.lazypull.testing.NbdTestClient.SimpleReply;
import dev.lazypull.testing.TestFetch;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The server end to end over a real unix socket, driven by a raw client: the replies real clients
 * rely on, and the robustness cases (bad magic, unknown commands, out-of-range, zero-length and
 * oversized requests, writes to the read-only export, half-closed connections), each answered
 * correctly or with a clean disconnect while other connections keep being served.
 */
@Timeout(60)
class NbdServerTest {
  static final int CHUNK = 64 << 10;
  static final long SIZE = 4L << 20;
  static final long BLOB_AT = 64 << 10;
  @TempDir Path dir;
  private final FetchCore core = TestFetch.core(CHUNK, 4 * CHUNK);
  private final MemoryBlobSource source = new MemoryBlobSource();
  private final byte[] head = MemoryBlobSource.randomBytes(4096, 1);
  private final byte[] blob = MemoryBlobSource.randomBytes((1 << 20) + 1000, 2);
  private byte[] expected;
  private BlobCacheDir cache;
  private BlobCacheFile file;
  private NbdServer server;
  private Path socket;

  @BeforeEach
  void start() throws IOException {
    Descriptor d = source.add(blob, "x");
    cache = BlobCacheDir.open(dir.resolve("cache"), core);
    file = cache.file(TestFetch.ref(d), source);
    SegmentDevice device =
        new SegmentDevice(
            SIZE,
            List.of(
                new SegmentDevice.Segment(0, head.length, SegmentDevice.bytes(head), 0),
                new SegmentDevice.Segment(BLOB_AT, file.size(), SegmentDevice.file(file), 0)));
    expected = new byte[(int) SIZE];
    System.arraycopy(head, 0, expected, 0, head.length);
    System.arraycopy(blob, 0, expected, (int) BLOB_AT, blob.length);
    server =
        newServer(device, NbdServer.Options.defaults().withReadDeadline(Duration.ofSeconds(5)));
  }

  private NbdServer newServer(ExportDevice device, NbdServer.Options options) throws IOException {
    if (server != null) {
      server.close();
    }
    NbdServer s =
        new NbdServer(device, new ExportInfo("flat", "test export", device.size()), options);
    socket = dir.resolve("nbd-" + System.nanoTime() + ".sock");
    s.listen(new ListenAddress.Unix(socket), false);
    return s;
  }

  @AfterEach
  void stop() {
    server.close();
    cache.close();
    core.close();
  }

  private byte[] expected(long offset, int length) {
    return Arrays.copyOfRange(expected, (int) offset, (int) offset + length);
  }

  private NbdTestClient structured() throws IOException {
    NbdTestClient c = NbdTestClient.connect(socket);
    NbdTestClient.Export e = c.go("flat", true, true);
    assertEquals(SIZE, e.size());
    return c;
  }

  private NbdTestClient simple() throws IOException {
    NbdTestClient c = NbdTestClient.connect(socket);
    c.exportName("", true);
    return c;
  }

  @Test
  void structuredReadsSendHolesAndDataAndBlockStatusMapsTheDevice() throws Exception {
    try (NbdTestClient c = structured()) {
      c.request(Nbd.CMD_READ, 0, 7, 0, 2 << 20);
      List<Chunk> chunks = c.structuredReply(7);
      assertArrayEquals(expected(0, 2 << 20), NbdTestClient.assemble(chunks, 0, 2 << 20));
      assertTrue(
          chunks.stream().anyMatch(ch -> ch.type() == Nbd.REPLY_TYPE_OFFSET_HOLE),
          "gaps go as holes");
      assertEquals(1, chunks.stream().filter(Chunk::done).count());

      c.request(Nbd.CMD_READ, Nbd.CMD_FLAG_DF, 8, 1000, 200_000);
      chunks = c.structuredReply(8);
      assertEquals(
          1,
          chunks.stream().filter(ch -> ch.type() == Nbd.REPLY_TYPE_OFFSET_DATA).count(),
          "DF: one data chunk, zeros included");
      assertArrayEquals(expected(1000, 200_000), NbdTestClient.assemble(chunks, 1000, 200_000));

      c.request(Nbd.CMD_BLOCK_STATUS, 0, 9, 0, SIZE);
      Chunk bs = c.structuredReply(9).get(0);
      assertEquals(Nbd.REPLY_TYPE_BLOCK_STATUS, bs.type());
      ByteBuffer p = ByteBuffer.wrap(bs.payload());
      assertEquals(Negotiator.BASE_ALLOCATION_ID, p.getInt());
      long padded = AlignedBuffers.roundUp(blob.length, 4096);
      long[][] want = {{4096, 0}, {BLOB_AT - 4096, 3}, {padded, 0}, {SIZE - BLOB_AT - padded, 3}};
      for (long[] w : want) {
        assertEquals(w[0], Integer.toUnsignedLong(p.getInt()));
        assertEquals(w[1], p.getInt());
      }
      c.request(Nbd.CMD_BLOCK_STATUS, Nbd.CMD_FLAG_REQ_ONE, 10, 4096, SIZE - 4096);
      bs = c.structuredReply(10).get(0);
      assertEquals(12, bs.payload().length, "REQ_ONE: one extent");
      assertEquals(BLOB_AT - 4096, ByteBuffer.wrap(bs.payload()).getInt(4));
    }
  }

  @Test
  void simpleRepliesCarryTheData() throws Exception {
    try (NbdTestClient c = NbdTestClient.connect(socket)) {
      NbdTestClient.Export e = c.exportName("flat", false); // with the 124 zero bytes
      assertEquals(SIZE, e.size());
      assertEquals(Nbd.TFLAG_READ_ONLY, e.flags() & Nbd.TFLAG_READ_ONLY);
      c.request(Nbd.CMD_READ, 0, 1, BLOB_AT - 100, 300_000);
      SimpleReply r = c.simpleReply(300_000);
      assertEquals(0, r.error());
      assertArrayEquals(expected(BLOB_AT - 100, 300_000), r.data());
      c.request(Nbd.CMD_READ, 0, 2, 0, 3 << 20); // several pieces, streamed after the header
      assertArrayEquals(expected(0, 3 << 20), c.simpleReply(3 << 20).data());
    }
  }

  @Test
  void badRequestsGetErrorsAndTheConnectionGoesOn() throws Exception {
    try (NbdTestClient c = simple()) {
      int cookie = 100;
      Object[][] cases = {
        {Nbd.CMD_READ, 0, SIZE - 10, 20L, Nbd.EINVAL, "past the end"},
        {Nbd.CMD_READ, 0, -4096L, 4096L, Nbd.EINVAL, "offset beyond 2^63"},
        {Nbd.CMD_READ, 0, 0L, 0L, Nbd.EINVAL, "zero length"},
        {Nbd.CMD_READ, 0, 0L, (long) Nbd.MAX_PAYLOAD + 1, Nbd.EINVAL, "oversized"},
        {Nbd.CMD_READ, Nbd.CMD_FLAG_DF, 0L, 10L, Nbd.EINVAL, "DF without structured replies"},
        {Nbd.CMD_READ, 1 << 9, 0L, 10L, Nbd.EINVAL, "unknown flag"},
        {42, 0, 0L, 10L, Nbd.EINVAL, "unknown command"},
        {Nbd.CMD_TRIM, 0, 0L, 4096L, Nbd.EPERM, "trim"},
        {Nbd.CMD_WRITE_ZEROES, 0, 0L, 4096L, Nbd.EPERM, "write zeroes"},
        {Nbd.CMD_BLOCK_STATUS, 0, 0L, 4096L, Nbd.EINVAL, "no meta context"},
        {Nbd.CMD_FLUSH, 0, 0L, 0L, 0, "flush"},
        {Nbd.CMD_CACHE, 0, BLOB_AT, 100L, 0, "cache (prefetch)"},
        {Nbd.CMD_READ, Nbd.CMD_FLAG_FUA, 0L, 10L, 0, "FUA is tolerated"},
      };
      for (Object[] k : cases) {
        c.request((int) k[0], (int) k[1], ++cookie, (long) k[2], (long) k[3]);
        SimpleReply r =
            c.simpleReply((int) k[4] == 0 && (int) k[0] == Nbd.CMD_READ ? (int) (long) k[3] : 0);
        assertEquals(cookie, r.cookie(), (String) k[5]);
        assertEquals((int) k[4], r.error(), (String) k[5]);
      }
      assertTrue(file.isCached(0, 100), "CACHE fetched the range");
      // A WRITE's payload is consumed, so the stream stays in step.
      c.request(Nbd.CMD_WRITE, 0, ++cookie, 0, 5000);
      c.write(new byte[5000]);
      assertEquals(Nbd.EPERM, c.simpleReply(0).error());
      c.request(Nbd.CMD_READ, 0, ++cookie, 0, 4096);
      SimpleReply ok = c.simpleReply(4096);
      assertEquals(0, ok.error());
      assertArrayEquals(head, ok.data());
    }
    assertEquals(
        1, server.stats().writesRefused.sum() - 2, "WRITE, TRIM, WRITE_ZEROES all refused");
  }

  @Test
  void requestsSharingOneWriteOrSplitOverManyAreAllAnswered() throws Exception {
    try (NbdTestClient c = simple()) {
      ByteBuffer three =
          ByteBuffer.allocate(3 * Nbd.REQUEST_SIZE + 5000)
              .put(new NbdRequest(0, Nbd.CMD_READ, 1, 0, 4096).encode())
              .put(new NbdRequest(Nbd.CMD_FLAG_FUA, Nbd.CMD_WRITE, 2, 0, 5000).encode())
              .put(new byte[5000])
              .put(new NbdRequest(0, Nbd.CMD_FLUSH, 3, 0, 0).encode())
              .flip();
      c.write(three);
      SimpleReply read = c.simpleReply(4096);
      assertEquals(1, read.cookie());
      assertArrayEquals(head, read.data());
      SimpleReply write = c.simpleReply(0);
      assertEquals(2, write.cookie());
      assertEquals(
          Nbd.EPERM, write.error(), "the WRITE's payload was skipped, not read as requests");
      assertEquals(3, c.simpleReply(0).cookie());
      ByteBuffer dribbled = new NbdRequest(0, Nbd.CMD_READ, 4, BLOB_AT, 1000).encode();
      while (dribbled.hasRemaining()) { // one byte per write
        c.write(dribbled.slice().limit(1));
        dribbled.position(dribbled.position() + 1);
      }
      SimpleReply r = c.simpleReply(1000);
      assertEquals(4, r.cookie());
      assertArrayEquals(expected(BLOB_AT, 1000), r.data());
    }
    assertEquals(4, server.stats().requests.sum());
  }

  /**
   * A socketpair end as the kernel's nbd driver holds it: no handshake, simple replies, several per
   * read.
   */
  @Test
  void kernelSocketsStartInTransmission() throws Exception {
    int[] pair = Posix.socketpair();
    int kernel = pair[0];
    try {
      server.serveKernelSocket(pair[1], "test kernel socket");
      ByteBuffer out =
          ByteBuffer.allocateDirect(3 * Nbd.REQUEST_SIZE)
              .put(new NbdRequest(0, Nbd.CMD_READ, 1, 0, 4096).encode())
              .put(new NbdRequest(Nbd.CMD_FLAG_FUA, Nbd.CMD_FLUSH, 2, 0, 0).encode())
              .put(new NbdRequest(0, Nbd.CMD_DISC, 3, 0, 0).encode())
              .flip();
      while (out.hasRemaining()) {
        out.position(out.position() + (int) Posix.write(kernel, out));
      }
      ByteBuffer in = ByteBuffer.allocateDirect(2 * Nbd.SIMPLE_REPLY_SIZE + 4096);
      while (in.hasRemaining()) {
        int n = Posix.read(kernel, in);
        assertTrue(n > 0, "replies before the server closes");
        in.position(in.position() + n);
      }
      in.flip();
      assertEquals(Nbd.SIMPLE_REPLY_MAGIC, in.getInt());
      assertEquals(0, in.getInt());
      assertEquals(1, in.getLong());
      byte[] data = new byte[4096];
      in.get(data);
      assertArrayEquals(head, data);
      assertEquals(Nbd.SIMPLE_REPLY_MAGIC, in.getInt());
      assertEquals(0, in.getInt());
      assertEquals(2, in.getLong());
      assertEquals(
          0, Posix.read(kernel, ByteBuffer.allocateDirect(1)), "DISC: the server closes its end");
    } finally {
      Posix.closeQuietly(kernel);
    }
  }

  @Test
  void structuredErrorsCarryAReason() throws Exception {
    try (NbdTestClient c = structured()) {
      c.request(Nbd.CMD_READ, 0, 5, SIZE, 1);
      Chunk e = c.structuredReply(5).get(0);
      assertEquals(Nbd.REPLY_TYPE_ERROR, e.type());
      assertEquals(Nbd.EINVAL, e.error());
      String msg = new String(e.payload(), 6, e.payload().length - 6, StandardCharsets.UTF_8);
      assertTrue(msg.contains("past the end"), msg);
      c.request(Nbd.CMD_WRITE, 0, 6, 0, 10);
      c.write(new byte[10]);
      assertEquals(Nbd.EPERM, c.structuredReply(6).get(0).error());
      c.request(Nbd.CMD_READ, 0, 7, 0, 4096);
      assertArrayEquals(head, NbdTestClient.assemble(c.structuredReply(7), 0, 4096));
    }
  }

  @Test
  void protocolViolationsDisconnectOnlyTheirConnection() throws Exception {
    try (NbdTestClient good = structured()) {
      ExpectedLogs.warning("protocol violation, disconnecting: bad request magic 0xdeadbeef");
      ExpectedLogs.warning(
          "protocol violation, disconnecting: WRITE payload of "
              + (Nbd.MAX_PAYLOAD + 1L)
              + " bytes");
      ExpectedLogs.warning(
          "protocol violation, disconnecting: client sent unknown handshake flags 0x10");
      ExpectedLogs.warning("protocol violation, disconnecting: bad option magic 0x1234");
      try (NbdTestClient bad = structured()) {
        bad.write(ByteBuffer.allocate(28).putInt(0, 0xdeadbeef));
        assertTrue(bad.closedByServer(), "bad request magic: hard disconnect");
      }
      try (NbdTestClient bad = simple()) {
        bad.request(Nbd.CMD_WRITE, 0, 1, 0, Nbd.MAX_PAYLOAD + 1L);
        assertTrue(
            bad.closedByServer(), "a WRITE payload over the maximum cannot be skipped safely");
      }
      try (NbdTestClient bad = NbdTestClient.connect(socket)) {
        bad.greeting(0x10);
        assertTrue(bad.closedByServer(), "unknown client flags");
      }
      try (NbdTestClient bad = NbdTestClient.connect(socket)) {
        bad.greeting(3);
        bad.write(ByteBuffer.allocate(16).putLong(0x1234).putInt(7).putInt(0).flip());
        assertTrue(bad.closedByServer(), "bad option magic");
      }
      try (NbdTestClient bad = NbdTestClient.connect(socket)) {
        bad.greeting(3);
        bad.option(Nbd.OPT_EXPORT_NAME, "nope".getBytes(StandardCharsets.UTF_8));
        assertTrue(bad.closedByServer(), "unknown export in EXPORT_NAME");
      }
      good.request(Nbd.CMD_READ, 0, 1, BLOB_AT, 1000);
      assertArrayEquals(
          expected(BLOB_AT, 1000), NbdTestClient.assemble(good.structuredReply(1), BLOB_AT, 1000));
    }
    assertTrue(server.stats().protocolErrors.sum() >= 4);
    try (NbdTestClient again = structured()) {
      again.request(Nbd.CMD_READ, 0, 1, 0, 10);
      assertArrayEquals(expected(0, 10), NbdTestClient.assemble(again.structuredReply(1), 0, 10));
    }
  }

  @Test
  void handshakeOddities() throws Exception {
    try (NbdTestClient c = NbdTestClient.connect(socket)) {
      c.greeting(3);
      c.option(Nbd.OPT_GO, new byte[Nbd.MAX_OPTION_PAYLOAD + 1]);
      assertEquals(
          Nbd.REP_ERR_TOO_BIG,
          c.optionReply().type(),
          "oversized payload skipped, not read into memory");
      c.option(11, new byte[0]);
      assertEquals(Nbd.REP_ERR_UNSUP, c.optionReply().type(), "EXTENDED_HEADERS");
      c.option(Nbd.OPT_LIST, new byte[0]);
      List<NbdTestClient.OptionReply> list = c.optionReplies();
      assertEquals(Nbd.REP_SERVER, list.get(0).type());
      c.option(Nbd.OPT_ABORT, new byte[0]);
      assertEquals(Nbd.REP_ACK, c.optionReply().type());
      assertTrue(c.closedByServer());
    }
  }

  @Test
  void aHalfClosedConnectionStillGetsItsReplies() throws Exception {
    try (NbdTestClient c = simple()) {
      source.gate = new CountDownLatch(1);
      c.request(Nbd.CMD_READ, 0, 1, BLOB_AT, 4096); // cold: waits on the gate
      c.request(Nbd.CMD_READ, 0, 2, 0, 4096); // warm
      c.shutdownOutput();
      SimpleReply first = c.simpleReply(4096);
      assertEquals(2, first.cookie(), "the warm READ is answered first: replies go out of order");
      source.gate.countDown();
      SimpleReply second = c.simpleReply(4096);
      assertEquals(1, second.cookie());
      assertArrayEquals(expected(BLOB_AT, 4096), second.data());
      assertTrue(c.closedByServer());
    }
  }

  @Test
  void fetchFailuresAndDeadlinesAreEioAndNotFatal() throws Exception {
    try (NbdTestClient c = simple();
        NbdTestClient s = structured()) {
      source.failWith = new IOException("registry says 503");
      ExpectedLogs.warning(" failed: registry says 503");
      c.request(Nbd.CMD_READ, 0, 1, BLOB_AT, 10);
      assertEquals(Nbd.EIO, c.simpleReply(10).error());
      s.request(Nbd.CMD_READ, 0, 2, BLOB_AT, 10);
      Chunk e = s.structuredReply(2).get(0);
      assertEquals(Nbd.REPLY_TYPE_ERROR, e.type());
      assertEquals(Nbd.EIO, e.error());
      assertTrue(new String(e.payload(), StandardCharsets.UTF_8).contains("503"));
      source.failWith = null;
      c.request(Nbd.CMD_READ, 0, 3, BLOB_AT, 10);
      assertArrayEquals(expected(BLOB_AT, 10), c.simpleReply(10).data());
    }
    server =
        newServer(
            server.device(), NbdServer.Options.defaults().withReadDeadline(Duration.ofMillis(300)));
    source.gate = new CountDownLatch(1);
    ExpectedLogs.warning(" failed: data not fetched within 300 ms");
    try (NbdTestClient c = simple()) {
      c.request(Nbd.CMD_READ, 0, 4, BLOB_AT + 5 * CHUNK, 10);
      assertEquals(Nbd.EIO, c.simpleReply(10).error(), "not fetched within the read deadline");
    } finally {
      source.gate.countDown();
    }
  }

  @Test
  void manyConnectionsAtOnce() throws Exception {
    ExecutorService clients = Executors.newFixedThreadPool(8);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        long seed = i;
        boolean structured = i % 2 == 0;
        done.add(
            clients.submit(
                () -> {
                  Random rnd = new Random(seed);
                  try (NbdTestClient c = structured ? structured() : simple()) {
                    for (int k = 0; k < 40; k++) {
                      int len = 1 + rnd.nextInt(300_000);
                      long off = rnd.nextInt((int) SIZE - len);
                      c.request(Nbd.CMD_READ, 0, k, off, len);
                      byte[] got =
                          structured
                              ? NbdTestClient.assemble(c.structuredReply(k), off, len)
                              : c.simpleReply(len).data();
                      assertArrayEquals(expected(off, len), got, "read " + off + "+" + len);
                    }
                  }
                  return null;
                }));
      }
      for (Future<?> f : done) {
        f.get();
      }
    } finally {
      clients.shutdownNow();
    }
    assertTrue(server.stats().connections.sum() >= 8);
  }

  @Test
  void connectionLimitAndHandshakeTimeout() throws Exception {
    server =
        newServer(
            server.device(),
            NbdServer.Options.defaults()
                .withMaxConnections(2)
                .withHandshakeTimeout(Duration.ofMillis(500)));
    ExpectedLogs.warning(": 2 connections are open already");
    ExpectedLogs.warning(": no export chosen within PT0.5S; disconnecting");
    try (NbdTestClient a = structured();
        NbdTestClient b = structured();
        NbdTestClient c = NbdTestClient.connect(socket)) {
      assertTrue(c.closedByServer(), "a third connection is refused");
      a.request(Nbd.CMD_READ, 0, 1, 0, 10);
      assertArrayEquals(expected(0, 10), NbdTestClient.assemble(a.structuredReply(1), 0, 10));
    }
    assertTrue(
        server.awaitConnections(0, Duration.ofSeconds(5)), "the closed clients' connections ended");
    try (NbdTestClient idle = NbdTestClient.connect(socket)) {
      idle.greeting(3);
      assertTrue(idle.closedByServer(), "no export chosen within the handshake timeout");
    }
  }

  @Test
  void aClientThatStopsReadingIsDisconnected() throws Exception {
    server =
        newServer(
            server.device(), NbdServer.Options.defaults().withWriteTimeout(Duration.ofMillis(400)));
    ExpectedLogs.warning(
        ": a reply could not be written for PT0.4S (the client stopped reading); disconnecting it");
    try (NbdTestClient stuck = simple();
        NbdTestClient other = structured()) {
      for (int i = 0; i < 64; i++) { // 64 MiB of replies it never reads: the socket buffers fill up
        stuck.request(Nbd.CMD_READ, 0, i, 2 << 20, 1 << 20);
      }
      assertTrue(
          server.awaitConnections(1, Duration.ofSeconds(10)), "the stalled client was dropped");
      other.request(Nbd.CMD_READ, 0, 1, BLOB_AT, 100_000);
      assertArrayEquals(
          expected(BLOB_AT, 100_000),
          NbdTestClient.assemble(other.structuredReply(1), BLOB_AT, 100_000));
    }
  }

  @Test
  void tcpListensOnLoopbackOnly() throws Exception {
    var bound = (InetSocketAddress) server.listen(ListenAddress.parse("tcp:127.0.0.1:0"), false);
    try (NbdTestClient c = NbdTestClient.connect(bound)) {
      assertEquals(SIZE, c.go("", true, false).size());
      c.request(Nbd.CMD_READ, 0, 1, 0, 100);
      assertArrayEquals(expected(0, 100), NbdTestClient.assemble(c.structuredReply(1), 0, 100));
    }
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> server.listen(ListenAddress.parse("tcp:0.0.0.0:0"), false));
    assertTrue(e.getMessage().contains("loopback"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> ListenAddress.parse("udp:1"));
    assertEquals(new ListenAddress.Tcp("::1", 10809), ListenAddress.parse("tcp:[::1]:10809"));
    assertThrows(
        IOException.class,
        () -> server.listen(new ListenAddress.Unix(socket), false),
        "a live socket is not replaced");
  }
}

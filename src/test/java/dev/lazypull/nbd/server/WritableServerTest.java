package dev.lazypull.nbd.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.fetch.BlobCacheDir;
import dev.lazypull.fetch.BlobCacheFile;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.image.Descriptor;
import dev.lazypull.nbd.device.OverlayDevice;
import dev.lazypull.nbd.device.SegmentDevice;
import dev.lazypull.nbd.protocol.ExportInfo;
import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.overlay.Overlay;
import dev.lazypull.overlay.OverlayMeta;
import dev.lazypull.testing.MemoryBlobSource;
import dev.lazypull.testing.NbdTestClient;
import dev.lazypull.testing.NbdTestClient.Chunk;
import dev.lazypull.testing.NbdTestClient.SimpleReply;
import dev.lazypull.testing.TestFetch;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A writable export end to end over a real unix socket, raw client in hand: an overlay over a base
 * fetched lazily from a blob source. WRITE (with FUA), TRIM, WRITE_ZEROES (NO_HOLE), FLUSH; reads
 * and block status merging the base, the writes and the zeros; several connections sharing one
 * device; the refusals (past the end, zero length, flags the commands do not take, oversized
 * payloads) — and read-only exports unchanged.
 */
@Timeout(60)
class WritableServerTest {
  static final int CHUNK = 64 << 10;
  static final int BS = 4096;
  @TempDir Path dir;
  private final FetchCore core = TestFetch.core(CHUNK, 4 * CHUNK);
  private final MemoryBlobSource source = new MemoryBlobSource();
  private final byte[] blob = MemoryBlobSource.randomBytes(1 << 20, 2);
  private byte[] expected;
  private BlobCacheDir cache;
  private BlobCacheFile file;
  private Overlay overlay;
  private NbdServer server;
  private Path socket;

  @BeforeEach
  void start() throws IOException {
    Descriptor d = source.add(blob, "x");
    cache = BlobCacheDir.open(dir.resolve("cache"), core);
    file = cache.file(TestFetch.ref(d), source);
    long size = 2L << 20; // the blob, then 1 MiB of zeros
    SegmentDevice base =
        new SegmentDevice(
            size, List.of(new SegmentDevice.Segment(0, blob.length, SegmentDevice.file(file), 0)));
    expected = Arrays.copyOf(blob, (int) size);
    overlay =
        Overlay.open(
            dir.resolve("overlay"),
            new OverlayMeta(1, BS, size, "test", "sha256:" + "0".repeat(64), "disk"),
            OverlayDevice.baseOf(base),
            Duration.ofSeconds(5));
    OverlayDevice device = new OverlayDevice(base, overlay);
    server =
        new NbdServer(
            device,
            new ExportInfo("disk", "writable test", size, true, true),
            NbdServer.Options.defaults().withReadDeadline(Duration.ofSeconds(5)));
    socket = dir.resolve("nbd.sock");
    server.listen(new ListenAddress.Unix(socket), false);
  }

  @AfterEach
  void stop() {
    server.close();
    overlay.close();
    cache.close();
    core.close();
  }

  private NbdTestClient structured() throws IOException {
    NbdTestClient c = NbdTestClient.connect(socket);
    NbdTestClient.Export e = c.go("disk", true, true);
    assertEquals(expected.length, e.size());
    return c;
  }

  private NbdTestClient simple() throws IOException {
    NbdTestClient c = NbdTestClient.connect(socket);
    c.exportName("", true);
    return c;
  }

  private static byte[] pattern(int n, int seed) {
    byte[] b = MemoryBlobSource.randomBytes(n, seed);
    b[0] |= 1;
    return b;
  }

  private int write(NbdTestClient c, int flags, long cookie, long offset, byte[] data)
      throws IOException {
    c.request(Nbd.CMD_WRITE, flags, cookie, offset, data.length);
    c.write(data);
    SimpleReply r = c.simpleReply(0);
    assertEquals(cookie, r.cookie());
    if (r.error() == 0) {
      System.arraycopy(data, 0, expected, (int) offset, data.length);
    }
    return r.error();
  }

  private int command(NbdTestClient c, int type, int flags, long cookie, long offset, long length)
      throws IOException {
    c.request(type, flags, cookie, offset, length);
    SimpleReply r = c.simpleReply(0);
    assertEquals(cookie, r.cookie());
    if (r.error() == 0 && (type == Nbd.CMD_TRIM || type == Nbd.CMD_WRITE_ZEROES)) {
      Arrays.fill(expected, (int) offset, (int) (offset + length), (byte) 0);
    }
    return r.error();
  }

  private byte[] readSimple(NbdTestClient c, long cookie, long offset, int length)
      throws IOException {
    c.request(Nbd.CMD_READ, 0, cookie, offset, length);
    SimpleReply r = c.simpleReply(length);
    assertEquals(0, r.error());
    return r.data();
  }

  private byte[] expected(long offset, int length) {
    return Arrays.copyOfRange(expected, (int) offset, (int) offset + length);
  }

  /** Extents of a BLOCK_STATUS of the whole device: {length, flags} pairs. */
  private static int[] blockStatus(NbdTestClient c, long cookie, long length) throws IOException {
    c.request(Nbd.CMD_BLOCK_STATUS, 0, cookie, 0, length);
    List<Chunk> chunks = c.structuredReply(cookie);
    ByteBuffer p = ByteBuffer.wrap(chunks.get(0).payload());
    p.getInt();
    int[] out = new int[p.remaining() / 4];
    for (int i = 0; i < out.length; i++) {
      out[i] = p.getInt();
    }
    return out;
  }

  @Test
  void theHandshakeAdvertisesAWritableMultiConnectionExport() throws IOException {
    try (NbdTestClient c = NbdTestClient.connect(socket)) {
      int flags = c.go("disk", true, true).flags();
      assertEquals(0, flags & Nbd.TFLAG_READ_ONLY);
      for (int f :
          new int[] {
            Nbd.TFLAG_HAS_FLAGS,
            Nbd.TFLAG_SEND_FLUSH,
            Nbd.TFLAG_SEND_FUA,
            Nbd.TFLAG_SEND_TRIM,
            Nbd.TFLAG_SEND_WRITE_ZEROES,
            Nbd.TFLAG_CAN_MULTI_CONN,
            Nbd.TFLAG_SEND_DF
          }) {
        assertTrue(
            (flags & f) != 0,
            "flag 0x" + Integer.toHexString(f) + " in 0x" + Integer.toHexString(flags));
      }
    }
  }

  @Test
  void writesOfEveryShapeReadBackMergedWithTheLazyBase() throws IOException {
    try (NbdTestClient c = simple()) {
      assertEquals(0, write(c, 0, 1, 8 * BS, pattern(3 * BS, 1)), "whole blocks");
      assertEquals(
          0,
          write(c, 0, 2, 20 * BS + 100, pattern(300, 2)),
          "inside a block of the base: fetched first");
      assertEquals(
          0,
          write(c, Nbd.CMD_FLAG_FUA, 3, (1 << 20) + 5, pattern(10, 3)),
          "inside a zero block, FUA");
      assertEquals(0, write(c, 0, 4, 3 * BS - 1, pattern(BS + 2, 4)), "straddling three blocks");
      assertArrayEquals(expected(0, 2 << 20), readSimple(c, 5, 0, 2 << 20));
    }
    try (NbdTestClient c = structured()) {
      c.request(Nbd.CMD_READ, 0, 6, 0, 2 << 20);
      assertArrayEquals(
          expected(0, 2 << 20), NbdTestClient.assemble(c.structuredReply(6), 0, 2 << 20));
    }
    assertEquals(4, server.stats().writes.sum());
    assertEquals(0, server.stats().writesFailed.sum());
  }

  @Test
  void trimAndWriteZeroesReadAsZerosAndShowAsHolesInBlockStatus() throws IOException {
    try (NbdTestClient c = structured()) {
      assertEquals(0, command(c, Nbd.CMD_TRIM, 0, 1, 0, 4 * BS));
      assertEquals(
          0,
          command(
              c, Nbd.CMD_WRITE_ZEROES, Nbd.CMD_FLAG_NO_HOLE | Nbd.CMD_FLAG_FUA, 2, 8 * BS, 2 * BS));
      assertEquals(
          0,
          command(c, Nbd.CMD_TRIM, Nbd.CMD_FLAG_FUA, 3, 12 * BS + 10, 20),
          "partial: written zeros");
      int[] ext = blockStatus(c, 4, 2 << 20);
      int hz = Nbd.STATE_HOLE | Nbd.STATE_ZERO;
      assertArrayEquals(
          new int[] {4 * BS, hz, 4 * BS, 0, 2 * BS, hz, (1 << 20) - 10 * BS, 0, 1 << 20, hz},
          ext,
          Arrays.toString(ext));
      c.request(Nbd.CMD_READ, 0, 5, 0, 16 * BS);
      assertArrayEquals(
          expected(0, 16 * BS), NbdTestClient.assemble(c.structuredReply(5), 0, 16 * BS));
    }
  }

  @Test
  void theWriteCommandsRefuseWhatTheyDoNotTake() throws IOException {
    try (NbdTestClient c = simple()) {
      long size = expected.length;
      assertEquals(Nbd.ENOSPC, write(c, 0, 1, size - 10, new byte[11]), "a write past the end");
      assertEquals(Nbd.ENOSPC, command(c, Nbd.CMD_WRITE_ZEROES, 0, 2, size, 1));
      assertEquals(Nbd.ENOSPC, command(c, Nbd.CMD_TRIM, 0, 3, -4096, 4096));
      assertEquals(Nbd.EINVAL, command(c, Nbd.CMD_WRITE, 0, 4, 0, 0), "zero length");
      assertEquals(
          Nbd.EINVAL,
          command(c, Nbd.CMD_WRITE_ZEROES, Nbd.CMD_FLAG_FAST_ZERO, 5, 0, 4096),
          "FAST_ZERO was not advertised");
      assertEquals(Nbd.EINVAL, command(c, Nbd.CMD_TRIM, Nbd.CMD_FLAG_NO_HOLE, 6, 0, 4096));
      assertEquals(
          Nbd.EINVAL,
          write(c, Nbd.CMD_FLAG_DF, 7, 0, new byte[5]),
          "the payload was read all the same");
      assertEquals(0, write(c, 0, 8, 0, pattern(5, 8)), "still in step");
      assertArrayEquals(expected(0, 100), readSimple(c, 9, 0, 100));
    }
    assertEquals(7, server.stats().invalidRequests.sum());
    assertEquals(0, server.stats().writesFailed.sum());
  }

  @Test
  void anOversizedPayloadDisconnectsButLosesNothing() throws Exception {
    try (NbdTestClient c = simple()) {
      assertEquals(0, write(c, 0, 1, 0, pattern(BS, 1)));
      c.request(Nbd.CMD_WRITE, 0, 2, 0, Nbd.MAX_PAYLOAD + 1L);
      assertTrue(c.closedByServer(), "a payload over the maximum cannot be taken");
    }
    try (NbdTestClient c = simple()) {
      assertArrayEquals(expected(0, 2 * BS), readSimple(c, 1, 0, 2 * BS));
    }
    assertEquals(1, server.stats().protocolErrors.sum());
  }

  @Test
  void connectionsShareTheDeviceAndAFlushOnOneCoversWritesOfAnother() throws IOException {
    try (NbdTestClient a = simple();
        NbdTestClient b = simple()) {
      long before = overlay.generation();
      assertEquals(0, write(a, 0, 1, 100 * BS, pattern(2 * BS, 1)));
      assertArrayEquals(
          expected(100 * BS, 2 * BS), readSimple(b, 1, 100 * BS, 2 * BS), "b reads a's write");
      assertEquals(0, command(b, Nbd.CMD_FLUSH, 0, 2, 0, 0));
      assertEquals(before + 1, overlay.generation(), "b's flush wrote the state with a's write");
      assertTrue(Files.size(overlay.dir().resolve(Overlay.STATE)) > 0);
      assertEquals(0, command(b, Nbd.CMD_FLUSH, 0, 3, 0, 0));
      assertEquals(before + 1, overlay.generation(), "nothing new: no new state file");
    }
  }

  /** Polls {@code condition} (a state reached by other threads, no fixed sleep) for up to 30 s. */
  private static void await(BooleanSupplier condition, String what) throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > until) {
        throw new AssertionError("never: " + what);
      }
      Thread.sleep(1);
    }
  }

  @Test
  void writesWaitingOnTheBaseHoldNoMoreThanThePayloadBudget() throws Exception {
    PayloadPool pool = (PayloadPool) ((ServerContext) contextOf(server)).payloads();
    int n = pool.budget() / (1 << 20) + 16; // more 1 MiB payloads than the budget holds
    byte[] data = pattern(1 << 20, 9);
    source.gate = new CountDownLatch(1); // the base's fetch of block 0 hangs until we open the gate
    Throwable[] failed = new Throwable[1];
    int[] ok = new int[1];
    Thread sender =
        new Thread(
            () -> {
              try (NbdTestClient c = simple()) {
                for (int i = 0;
                    i < n;
                    i++) { // each starts inside block 0: it waits for the base, holding its payload
                  c.request(Nbd.CMD_WRITE, 0, i, 1, data.length);
                  c.write(data);
                }
                for (int i = 0; i < n; i++) {
                  ok[0] += c.simpleReply(0).error() == 0 ? 1 : 0;
                }
              } catch (Throwable e) {
                failed[0] = e;
              }
            });
    sender.start();
    await(() -> pool.inUse() + data.length > pool.budget(), "the budget filled up");
    await(
        WritableServerTest::aConnectionWaitsForPayloadRoom,
        "the connection stopped reading, waiting for room");
    assertTrue(pool.inUse() <= pool.budget(), pool.inUse() + " > " + pool.budget());
    source.gate.countDown();
    sender.join(TimeUnit.SECONDS.toMillis(30));
    assertEquals(null, failed[0]);
    assertEquals(n, ok[0], "every write applied once the base came");
    assertEquals(0, pool.inUse(), "every payload went back");
    System.arraycopy(data, 0, expected, 1, data.length);
    try (NbdTestClient c = simple()) {
      assertArrayEquals(expected(0, 2 << 20), readSimple(c, 1, 0, 2 << 20));
    }
  }

  /**
   * A connection thread parked in {@link PayloadPool#take}: it reads nothing more until room is
   * given back.
   */
  private static boolean aConnectionWaitsForPayloadRoom() {
    for (var e : Thread.getAllStackTraces().entrySet()) {
      if (e.getKey().getName().startsWith("lazypull-nbd-conn-")
          && e.getKey().getState() == Thread.State.WAITING
          && Arrays.stream(e.getValue())
              .anyMatch(
                  f ->
                      f.getMethodName().equals("take")
                          && f.getClassName().equals(PayloadPool.class.getName()))) {
        return true;
      }
    }
    return false;
  }

  private static Object contextOf(NbdServer s) throws Exception {
    var f = NbdServer.class.getDeclaredField("context");
    f.setAccessible(true);
    return f.get(s);
  }

  @Test
  void aReadOnlyExportOfTheSameDeviceStillRefusesWrites() throws IOException {
    NbdServer ro =
        new NbdServer(
            server.device(),
            new ExportInfo("ro", "read-only", expected.length),
            NbdServer.Options.defaults());
    Path rs = dir.resolve("ro.sock");
    ro.listen(new ListenAddress.Unix(rs), false);
    try (NbdTestClient c = NbdTestClient.connect(rs)) {
      int flags = c.exportName("", true).flags();
      assertTrue((flags & Nbd.TFLAG_READ_ONLY) != 0);
      c.request(Nbd.CMD_WRITE, Nbd.CMD_FLAG_FUA, 1, 0, 10);
      c.write(new byte[10]);
      assertEquals(Nbd.EPERM, c.simpleReply(0).error());
      assertEquals(Nbd.EPERM, command(c, Nbd.CMD_TRIM, 0, 2, 0, 4096));
      assertEquals(0, command(c, Nbd.CMD_FLUSH, 0, 3, 0, 0));
    } finally {
      ro.close();
    }
    assertEquals(2, ro.stats().writesRefused.sum());
    assertFalse(overlay.states().anyDirty(0, overlay.states().blocks()), "nothing written");
  }

  @Test
  void aWriteWaitingOnTheBaseIsAnsweredWhenTheFetchCompletes() throws Exception {
    source.gate = new CountDownLatch(1);
    try (NbdTestClient c = simple()) {
      byte[] data = pattern(10, 1);
      c.request(Nbd.CMD_WRITE, 0, 1, 30 * BS + 1, data.length);
      c.write(data);
      await(() -> !source.requests.isEmpty(), "the base fetch started");
      assertEquals(
          "0-" + overlay.states().blocks() + ":U",
          runs(),
          "not applied before its base bytes came");
      source.gate.countDown();
      assertEquals(0, c.simpleReply(0).error());
      System.arraycopy(data, 0, expected, 30 * BS + 1, data.length);
      assertArrayEquals(expected(29 * BS, 3 * BS), readSimple(c, 2, 29 * BS, 3 * BS));
    }
  }

  private String runs() {
    StringBuilder b = new StringBuilder();
    var s = overlay.states();
    s.forEachRun(
        0,
        s.blocks(),
        (x, y, st) ->
            b.append(b.length() > 0 ? " " : "")
                .append(x)
                .append('-')
                .append(y)
                .append(':')
                .append(st.name().charAt(0)));
    return b.toString();
  }
}

package dev.lazypull.overlay;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.sys.Posix;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The overlay on its own over a base in memory: every kind of write against every block state,
 * reads merging base, data and zeros, zero detection and hole punching, durability across a
 * simulated crash (the directory copied as it is on disk), the lock, and refusals of damaged or
 * mismatched overlays.
 */
class OverlayTest {
  static final int BS = 4096;

  /**
   * A base whose bytes are in memory; blocks in {@code holes} read as zeros without fetching; other
   * ranges must be prepared before they are read (as the real base's cache files), and a gate can
   * hold preparing back.
   */
  static final class MemoryBase implements Overlay.Base {
    final byte[] bytes;
    final boolean[] hole;
    final boolean[] prepared;
    volatile CompletableFuture<Void> gate;
    int prepares;

    MemoryBase(byte[] bytes) {
      this.bytes = bytes;
      int blocks = (bytes.length + BS - 1) / BS;
      this.hole = new boolean[blocks];
      this.prepared = new boolean[blocks];
      for (int b = 0; b < blocks; b++) {
        boolean zero = true;
        for (int i = b * BS; i < Math.min(bytes.length, (b + 1) * BS); i++) {
          zero &= bytes[i] == 0;
        }
        hole[b] = zero;
      }
    }

    @Override
    public long size() {
      return bytes.length;
    }

    @Override
    public boolean isZero(long offset, long length) {
      for (long b = offset / BS; b <= (offset + length - 1) / BS; b++) {
        if (!hole[(int) b]) {
          return false;
        }
      }
      return true;
    }

    @Override
    public synchronized CompletableFuture<Void> prepare(long offset, long length) {
      prepares++;
      CompletableFuture<Void> g = gate;
      Runnable mark =
          () -> {
            synchronized (this) {
              for (long b = offset / BS; b <= (offset + length - 1) / BS; b++) {
                prepared[(int) b] = true;
              }
            }
          };
      if (g == null) {
        mark.run();
        return CompletableFuture.completedFuture(null);
      }
      return g.thenRun(mark);
    }

    @Override
    public synchronized void read(long offset, ByteBuffer dst) throws IOException {
      int n = dst.remaining();
      for (long b = offset / BS; n > 0 && b <= (offset + n - 1) / BS; b++) {
        if (!hole[(int) b] && !prepared[(int) b]) {
          throw new IOException("base block " + b + " read before it was prepared");
        }
      }
      dst.put(bytes, (int) offset, n);
    }
  }

  @TempDir Path tmp;
  private final List<Overlay> open = new ArrayList<>();
  private MemoryBase base;
  private byte[] expected;

  @AfterEach
  void closeAll() {
    open.forEach(Overlay::close);
  }

  /** A base of {@code blocks} blocks (+ {@code tail} bytes) of random bytes, blocks 4..7 a hole. */
  private void base(int blocks, int tail) {
    byte[] b = new byte[blocks * BS + tail];
    new Random(1).nextBytes(b);
    Arrays.fill(b, Math.min(4 * BS, b.length), Math.min(8 * BS, b.length), (byte) 0);
    base = new MemoryBase(b);
    expected = b.clone();
  }

  private OverlayMeta meta(int blockSize) {
    return new OverlayMeta(
        1, blockSize, base.size(), "oci:/base:1", "sha256:" + "ab".repeat(32), "disk");
  }

  private Overlay open(Path dir) throws IOException {
    Overlay o = Overlay.open(dir, meta(BS), base, Duration.ofSeconds(5));
    open.add(o);
    return o;
  }

  private static byte[] pattern(int n, int seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    for (int i = 0; i < n; i += 512) {
      b[i] |= 1; // never all zero
    }
    return b;
  }

  private static ByteBuffer direct(byte[] b) {
    return ByteBuffer.allocateDirect(b.length).put(b).flip();
  }

  private void write(Overlay o, long off, byte[] b) {
    o.write(off, direct(b)).join();
    System.arraycopy(b, 0, expected, (int) off, b.length);
  }

  private void zero(Overlay o, long off, int n) {
    o.zero(off, n).join();
    Arrays.fill(expected, (int) off, (int) off + n, (byte) 0);
  }

  private static byte[] read(Overlay o, long off, int n) throws IOException {
    o.prepare(off, n).join();
    ByteBuffer dst = ByteBuffer.allocateDirect(n);
    o.read(off, dst);
    assertEquals(n, dst.position());
    byte[] out = new byte[n];
    dst.flip().get(out);
    return out;
  }

  private void assertDevice(Overlay o) throws IOException {
    assertArrayEquals(expected, read(o, 0, expected.length));
    // and piece by piece at odd offsets
    for (int off = 0; off < expected.length; off += 3001) {
      int n = Math.min(5003, expected.length - off);
      assertArrayEquals(Arrays.copyOfRange(expected, off, off + n), read(o, off, n), "at " + off);
    }
  }

  private String states(Overlay o) {
    List<String> out = new ArrayList<>();
    BlockStates s = o.states();
    s.forEachRun(0, s.blocks(), (a, b, st) -> out.add(a + "-" + b + ":" + st.name().charAt(0)));
    return String.join(" ", out);
  }

  private long allocated(Overlay o) throws IOException {
    return Posix.allocatedBytes(o.dir().resolve(Overlay.DATA).toString());
  }

  @Test
  void writesOfEveryShapeReadBackMergedWithTheBase() throws IOException {
    base(16, 0);
    Overlay o = open(tmp.resolve("ov"));
    assertDevice(o);
    write(o, BS, pattern(2 * BS, 1)); // whole blocks 1, 2
    write(o, 3 * BS + 100, pattern(50, 2)); // part of block 3 (untouched: merged with the base)
    write(o, 4 * BS + 7, pattern(9, 3)); // part of block 4 (a base hole: merged with zeros)
    write(o, BS + 10, pattern(20, 4)); // part of dirty block 1, in place
    write(o, 9 * BS - 5, pattern(BS + 10, 5)); // the end of 8, all of 9, the start of 10
    assertDevice(o);
    assertEquals("0-1:U 1-5:D 5-8:U 8-11:D 11-16:U", states(o));
  }

  @Test
  void allZeroBlocksBecomeZeroAndDirtyOnesArePunched() throws IOException {
    base(16, 0);
    Overlay o = open(tmp.resolve("ov"));
    write(o, 0, pattern(8 * BS, 1));
    assertEquals(8L * BS, allocated(o));
    byte[] mixed = pattern(4 * BS, 2);
    Arrays.fill(mixed, BS, 3 * BS, (byte) 0); // blocks 1 and 2 of the write all zero
    write(o, 0, mixed);
    assertEquals("0-1:D 1-3:Z 3-8:D 8-16:U", states(o));
    assertEquals(6L * BS, allocated(o), "the zero blocks were punched out of the data file");
    write(o, 12 * BS, new byte[2 * BS]); // zeros over untouched base blocks
    assertEquals("0-1:D 1-3:Z 3-8:D 8-12:U 12-14:Z 14-16:U", states(o));
    byte[] z = new byte[100];
    write(o, 5 * BS, z); // part of a dirty block: in place, still dirty
    write(o, 10 * BS + 3000, z); // part of an untouched block: merged, stays data
    assertDevice(o);
    assertEquals(7L * BS, allocated(o));
  }

  @Test
  void trimAndWriteZeroesZeroWholeBlocksAndWritePartialOnes() throws IOException {
    base(16, 0);
    Overlay o = open(tmp.resolve("ov"));
    write(o, 0, pattern(16 * BS, 1));
    zero(o, 2 * BS, 3 * BS); // blocks 2..4
    zero(o, 8 * BS + 1, 2 * BS); // the end of 8, all 9, 1 byte of 10
    zero(o, 15 * BS, BS); // the last block
    assertEquals("0-2:D 2-5:Z 5-9:D 9-10:Z 10-15:D 15-16:Z", states(o));
    assertEquals(11L * BS, allocated(o));
    assertDevice(o);
    Overlay.Piece p = o.pieces(2 * BS - 10, 20).get(1);
    assertEquals(new Overlay.Piece(2 * BS, 10, Overlay.Source.ZERO), p);
  }

  @Test
  void zeroingUntouchedBlocksNeedsNoBaseBytesWhenWhole() throws IOException {
    base(16, 0);
    Overlay o = open(tmp.resolve("ov"));
    zero(o, 0, 16 * BS);
    assertEquals(0, base.prepares, "nothing fetched to zero whole blocks");
    assertEquals("0-16:Z", states(o));
    zero(o, 5 * BS + 3, 10); // inside a zero block: nothing to do
    assertDevice(o);
  }

  @Test
  void aShortLastBlockIsWrittenZeroedAndReadWhole() throws IOException {
    base(4, 1000);
    Overlay o = open(tmp.resolve("ov"));
    write(o, 4 * BS, pattern(1000, 1)); // the whole short block
    assertEquals("0-4:U 4-5:D", states(o));
    write(o, 3 * BS + 4000, pattern(200, 2)); // across into it
    zero(o, 4 * BS + 500, 500);
    assertDevice(o);
    zero(o, 4 * BS, 1000);
    assertEquals("0-3:U 3-4:D 4-5:Z", states(o));
    assertDevice(o);
    assertThrows(IllegalArgumentException.class, () -> o.write(4 * BS + 999, direct(new byte[2])));
  }

  @Test
  void aPartialWriteWaitsForItsBaseBytesAndTimesOutWithoutBeingApplied() throws Exception {
    base(16, 0);
    Path dir = tmp.resolve("ov");
    Overlay o = Overlay.open(dir, meta(BS), base, Duration.ofMillis(300));
    open.add(o);
    CompletableFuture<Void> gate = new CompletableFuture<>();
    base.gate = gate;
    CompletableFuture<Void> w = o.write(2 * BS + 1, direct(pattern(10, 1)));
    assertFalse(w.isDone(), "waits for the base bytes of block 2");
    assertEquals("0-16:U", states(o));
    gate.complete(null);
    w.get(5, TimeUnit.SECONDS);
    System.arraycopy(pattern(10, 1), 0, expected, 2 * BS + 1, 10);
    assertEquals("0-2:U 2-3:D 3-16:U", states(o));

    base.gate = new CompletableFuture<>(); // never completes
    CompletableFuture<Void> stuck =
        o.write(10 * BS - 1, direct(pattern(2, 2))); // the end of 9, the start of 10
    Throwable e = assertThrows(Exception.class, () -> stuck.get(5, TimeUnit.SECONDS));
    assertTrue(e.getCause() instanceof TimeoutException, String.valueOf(e));
    base.gate.complete(null); // the fetch ends later: the failed write must not be applied now
    assertEquals("0-2:U 2-3:D 3-16:U", states(o));
    base.gate = null;
    assertDevice(o);
  }

  @Test
  void concurrentPartialWritesToTheSameBlocksLoseNothing() throws Exception {
    base(16, 0);
    Overlay o = open(tmp.resolve("ov"));
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<?>> fs = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        int thread = t;
        fs.add(
            pool.submit(
                () -> {
                  for (int i = 0; i < 200; i++) {
                    // thread t writes bytes [t*8, t*8+8) of every 32-byte slot of blocks 0..15
                    long off = (long) (i % 16) * BS + (i / 16) * 32 + thread * 8;
                    byte[] b = new byte[8];
                    Arrays.fill(b, (byte) (thread + 1));
                    o.write(off, direct(b)).join();
                  }
                }));
      }
      for (Future<?> f : fs) {
        f.get(30, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
    for (int i = 0; i < 200; i++) {
      for (int thread = 0; thread < 4; thread++) {
        int off = (i % 16) * BS + (i / 16) * 32 + thread * 8;
        Arrays.fill(expected, off, off + 8, (byte) (thread + 1));
      }
    }
    assertDevice(o);
  }

  /**
   * The files as a crash would leave them, with everything written so far in them; the lock not
   * copied.
   */
  private Path crashCopy(Path dir, String name) throws IOException {
    Path copy = Files.createDirectories(tmp.resolve(name));
    for (String f : new String[] {Overlay.DATA, Overlay.STATE, OverlayMeta.FILE}) {
      if (Files.exists(dir.resolve(f))) {
        Files.copy(dir.resolve(f), copy.resolve(f), StandardCopyOption.REPLACE_EXISTING);
      }
    }
    return copy;
  }

  @Test
  void afterACrashFlushedWritesAreThereAndUnflushedOnesNeverReadAsNewBytesInOldBlocks()
      throws IOException {
    base(16, 0);
    Path dir = tmp.resolve("ov");
    Overlay o = open(dir);
    write(o, 0, pattern(4 * BS, 1));
    zero(o, 8 * BS, 2 * BS);
    o.flush();
    byte[] flushed = expected.clone();
    assertEquals(1, o.generation());
    // after the flush: writes to untouched blocks, a zeroing of dirty ones, an overwrite of a dirty
    // one
    write(o, 12 * BS, pattern(2 * BS, 2));
    zero(o, 0, BS);
    write(o, 2 * BS, pattern(BS, 3));
    Path crashed = crashCopy(dir, "crashed");
    Overlay c = open(crashed);
    assertEquals("0-4:D 4-8:U 8-10:Z 10-16:U", states(c), "the state of the last flush");
    byte[] got = read(c, 0, expected.length);
    assertArrayEquals(
        Arrays.copyOfRange(flushed, 4 * BS, 16 * BS),
        Arrays.copyOfRange(got, 4 * BS, 16 * BS),
        "blocks untouched or zero at the flush read as they did then, whatever was written since");
    for (int b = 0;
        b < 4;
        b++) { // dirty at the flush: as flushed, or as written since — nothing else
      byte[] blk = Arrays.copyOfRange(got, b * BS, (b + 1) * BS);
      assertTrue(
          Arrays.equals(blk, Arrays.copyOfRange(flushed, b * BS, (b + 1) * BS))
              || Arrays.equals(blk, Arrays.copyOfRange(expected, b * BS, (b + 1) * BS)),
          "block " + b);
    }
    c.close();
    o.flush();
    Overlay d = open(crashCopy(dir, "flushed"));
    assertDevice(d);
    assertEquals(2, o.generation());
    o.flush();
    assertEquals(2, o.generation(), "nothing changed: no new state file");
  }

  @Test
  void closeFlushesAndReopeningServesTheSameDevice() throws IOException {
    base(16, 0);
    Path dir = tmp.resolve("ov");
    Overlay o = Overlay.open(dir, meta(BS), base, Duration.ofSeconds(5));
    write(o, 3, pattern(5 * BS, 1));
    zero(o, 10 * BS, 3 * BS + 17);
    o.close();
    Overlay again =
        Overlay.open(dir, meta(0), base, Duration.ofSeconds(5)); // block size 0: the overlay's own
    open.add(again);
    assertDevice(again);
  }

  @Test
  void oneProcessAtATimeAndTheSecondIsToldWho() throws IOException {
    base(16, 0);
    Path dir = tmp.resolve("ov");
    open(dir);
    IOException e = assertThrows(Overlay.OverlayBusyException.class, () -> open(dir));
    assertTrue(
        e.getMessage()
            .contains("in use by another export (pid " + ProcessHandle.current().pid() + ")"),
        e.getMessage());
  }

  @Test
  void anOverlayOfAnotherBaseOrBlockSizeIsRefused() throws IOException {
    base(16, 0);
    Path dir = tmp.resolve("ov");
    Overlay.open(dir, meta(BS), base, Duration.ofSeconds(5)).close();
    OverlayMeta other =
        new OverlayMeta(1, BS, base.size(), "oci:/x:2", "sha256:" + "cd".repeat(32), "disk");
    IOException e =
        assertThrows(
            IOException.class, () -> Overlay.open(dir, other, base, Duration.ofSeconds(5)));
    assertTrue(e.getMessage().contains("lies over disk of oci:/base:1"), e.getMessage());
    e =
        assertThrows(
            IOException.class, () -> Overlay.open(dir, meta(512), base, Duration.ofSeconds(5)));
    assertTrue(e.getMessage().contains("has blocks of 4096 bytes, not 512"), e.getMessage());
  }

  @Test
  void aDamagedStateFileIsRefusedAndLeftAsItWas() throws IOException {
    base(16, 0);
    Path dir = tmp.resolve("ov");
    Overlay o = Overlay.open(dir, meta(BS), base, Duration.ofSeconds(5));
    write(o, 0, pattern(BS, 1));
    o.close();
    Path state = dir.resolve(Overlay.STATE);
    byte[] bytes = Files.readAllBytes(state);
    bytes[bytes.length / 2] ^= 0x10;
    Files.write(state, bytes);
    byte[] data = Files.readAllBytes(dir.resolve(Overlay.DATA));
    IOException e =
        assertThrows(
            IOException.class, () -> Overlay.open(dir, meta(BS), base, Duration.ofSeconds(5)));
    assertTrue(
        e.getMessage().contains("checksum mismatch")
            && e.getMessage().contains("nothing was changed"),
        e.getMessage());
    assertArrayEquals(bytes, Files.readAllBytes(state));
    assertArrayEquals(data, Files.readAllBytes(dir.resolve(Overlay.DATA)));
    Files.write(state, new byte[(int) BlockStates.maxEncodedSize(16) + 1]);
    e =
        assertThrows(
            IOException.class, () -> Overlay.open(dir, meta(BS), base, Duration.ofSeconds(5)));
    assertTrue(e.getMessage().contains("larger than any state"), e.getMessage());
  }

  @Test
  void aTruncatedDataFileUnderDirtyBlocksIsRefused() throws IOException {
    base(16, 0);
    Path dir = tmp.resolve("ov");
    Overlay o = Overlay.open(dir, meta(BS), base, Duration.ofSeconds(5));
    write(o, 0, pattern(BS, 1));
    o.close();
    try (var ch = FileChannel.open(dir.resolve(Overlay.DATA), StandardOpenOption.WRITE)) {
      ch.truncate(BS);
    }
    IOException e =
        assertThrows(
            IOException.class, () -> Overlay.open(dir, meta(BS), base, Duration.ofSeconds(5)));
    assertTrue(e.getMessage().contains("was truncated"), e.getMessage());
  }

  @Test
  void aFlushPointSeesExactlyTheFlushedState() throws IOException {
    base(16, 0);
    Overlay o = open(tmp.resolve("ov"));
    write(o, 0, pattern(2 * BS, 1));
    String seen =
        o.atFlushPoint(
            (states, data) -> {
              ByteBuffer b = ByteBuffer.allocateDirect(BS);
              data.read(BS, b);
              assertEquals(expected[BS + 7], b.get(7));
              return states.toString();
            });
    assertEquals("16 blocks: 2 dirty, 0 zero", seen);
    assertEquals(1, o.generation());
  }

  @Test
  void theZeroCheckFindsASingleByte() {
    for (int n : new int[] {1, 3, 4096, 65536, 65537, 200_000}) {
      ByteBuffer b = ByteBuffer.allocateDirect(n);
      assertTrue(ZeroCheck.isZero(b), "zeros of " + n);
      for (int at : new int[] {0, n / 3, n / 2, n - 1, Math.max(0, n - 65537)}) {
        b.put(at, (byte) 0x40);
        assertFalse(ZeroCheck.isZero(b), n + " with a byte at " + at);
        b.put(at, (byte) 0);
      }
    }
    assertTrue(
        ZeroCheck.isZero(ByteBuffer.allocateDirect(10).position(10)), "nothing left is zero");
  }
}

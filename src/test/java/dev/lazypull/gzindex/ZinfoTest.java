package dev.lazypull.gzindex;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.List;
import java.util.zip.Deflater;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The zinfo layout byte for byte as SOCI's gzip_zinfo.c (zinfo_to_blob / blob_to_zinfo) and
 * erofs-utils' gzran.c (aws_soci_zinfo_header / aws_soci_zinfo_ckpt) define it, version 1's
 * implicit first checkpoint, the streaming file writer, and strict, bounded decoding of zinfo files
 * and span tables.
 */
class ZinfoTest {
  @TempDir Path tmp;

  private static GzipIndexTest.Built built() throws Exception {
    byte[] plain = GzipSamples.data(600_000, 21);
    // Blocks end at least every 20 kB (sync flushes), so a 100 kB span gives several checkpoints.
    byte[] gz =
        GzipSamples.deflaterGzip(plain, 6, Deflater.DEFAULT_STRATEGY, Deflater.SYNC_FLUSH, 20_000);
    GzipIndexTest.Built b =
        GzipIndexTest.build(gz, GzipIndexer.Options.defaults().withSpan(100_000));
    assertTrue(
        b.result().checkpoints().size() >= 4, b.result().checkpoints().size() + " checkpoints");
    return b;
  }

  @Test
  void layoutIsSociVersionTwo() throws Exception {
    GzipIndexTest.Built b = built();
    List<Checkpoint> cps = b.result().checkpoints();
    byte[] z = b.zinfo();
    assertEquals(12 + cps.size() * 32_785, z.length);
    ByteBuffer bb = ByteBuffer.wrap(z).order(ByteOrder.LITTLE_ENDIAN);
    assertEquals(cps.size(), bb.getInt(0), "u32 count, little-endian");
    assertEquals(100_000, bb.getLong(4), "u64 span size");
    for (int i = 0; i < cps.size(); i++) {
      int at = 12 + i * 32_785;
      assertEquals(cps.get(i).in(), bb.getLong(at), "u64 in");
      assertEquals(cps.get(i).out(), bb.getLong(at + 8), "u64 out");
      assertEquals(cps.get(i).bits(), z[at + 16], "u8 bits");
      assertArrayEquals(
          b.windows().get(i), Arrays.copyOfRange(z, at + 17, at + 17 + 32_768), "window");
    }
    assertEquals(10, bb.getLong(12), "a 10-byte header: the first checkpoint is at 10");
    Zinfo read = Zinfo.read(z, b.result().compressedSize(), b.result().uncompressedSize());
    assertEquals(2, read.version());
    assertEquals(cps, read.checkpoints());
  }

  @Test
  void versionOneHasAnImplicitFirstCheckpoint() throws Exception {
    GzipIndexTest.Built b = built();
    byte[] v2 = b.zinfo();
    // v1 = the same header (the count still includes checkpoint 0) without checkpoint 0's record.
    byte[] v1 = new byte[v2.length - Zinfo.CHECKPOINT_SIZE];
    System.arraycopy(v2, 0, v1, 0, 12);
    System.arraycopy(v2, 12 + Zinfo.CHECKPOINT_SIZE, v1, 12, v1.length - 12);
    Zinfo z = Zinfo.read(v1, b.result().compressedSize(), b.result().uncompressedSize());
    assertEquals(1, z.version());
    assertEquals(
        b.result().checkpoints(),
        z.checkpoints(),
        "checkpoint 0 synthesized as in 10, bits 0, out 0");
    byte[] w = new byte[Zinfo.WINDOW_SIZE];
    z.window(0, w);
    assertArrayEquals(new byte[Zinfo.WINDOW_SIZE], w);
    z.window(2, w);
    assertArrayEquals(b.windows().get(2), w);
  }

  @Test
  void streamingWriterMatchesTheMemoryEncodingAndReadsBackFromTheFile() throws Exception {
    byte[] plain = GzipSamples.data(900_000, 22);
    byte[] gz = GzipSamples.javaGzip(plain);
    Path f = tmp.resolve("layer.zinfo");
    GzipIndexer.Result r;
    try (FileChannel ch =
        FileChannel.open(
            f, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.READ)) {
      Zinfo.Writer w = new Zinfo.Writer(ch, 200_000);
      r =
          GzipIndexer.index(
              new ByteArrayInputStream(gz), GzipIndexer.Options.defaults().withSpan(200_000), w);
      assertEquals(Files.size(f), w.finish());
    }
    GzipIndexTest.Built mem =
        GzipIndexTest.build(gz, GzipIndexer.Options.defaults().withSpan(200_000));
    assertArrayEquals(mem.zinfo(), Files.readAllBytes(f));
    try (FileChannel ch = FileChannel.open(f)) {
      Zinfo z = Zinfo.read(ch, r.compressedSize(), r.uncompressedSize());
      assertArrayEquals(MessageDigest.getInstance("SHA-256").digest(mem.zinfo()), z.sha256());
      GzipIndex ix = GzipIndex.of(z, SpanTable.of(r, z.sha256()));
      SpanReader reader = new SpanReader(ix, ByteRangeReader.of(gz));
      for (int i = 0; i < ix.spans(); i++) {
        long u = ix.uncompressedStart(i);
        assertArrayEquals(Arrays.copyOfRange(plain, (int) u, (int) u + 1000), reader.read(u, 1000));
      }
    }
  }

  private static byte[] header(long count, long span, int totalLength) {
    ByteBuffer b = ByteBuffer.allocate(totalLength).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt((int) count).putLong(span);
    return b.array();
  }

  private static String error(byte[] z, long compressed, long uncompressed) {
    return assertThrows(IndexFormatException.class, () -> Zinfo.read(z, compressed, uncompressed))
        .getMessage();
  }

  @Test
  void absurdCountsAreRefusedBeforeAllocating() throws Exception {
    assertTrue(error(new byte[5], 1000, 1000).contains("shorter than its 12-byte header"));
    assertTrue(
        error(header(0xffffffffL, 4 << 20, 12), 1 << 20, 1 << 30).contains("room for at most"));
    assertTrue(error(header(0, 4 << 20, 12), 1 << 20, 1 << 30).contains("no checkpoints"));
    assertTrue(
        error(header(3, 4 << 20, 12 + 2 * Zinfo.CHECKPOINT_SIZE + 1), 1 << 20, 1 << 30)
            .contains("does not hold 3 checkpoints"));
    assertTrue(
        error(header(1, 0, 12 + Zinfo.CHECKPOINT_SIZE), 1 << 20, 1 << 30).contains("span size"));
  }

  @Test
  void checkpointsMustBeInsideTheLayerAndInOrder() throws Exception {
    GzipIndexTest.Built b = built();
    long c = b.result().compressedSize();
    long u = b.result().uncompressedSize();
    assertTrue(b.result().checkpoints().size() >= 3);
    int second = 12 + Zinfo.CHECKPOINT_SIZE;
    byte[][] bad = new byte[6][];
    for (int i = 0; i < bad.length; i++) {
      bad[i] = b.zinfo().clone();
    }
    ByteBuffer.wrap(bad[0]).order(ByteOrder.LITTLE_ENDIAN).put(second + 16, (byte) 8);
    ByteBuffer.wrap(bad[1]).order(ByteOrder.LITTLE_ENDIAN).putLong(second, c + 1);
    ByteBuffer.wrap(bad[2]).order(ByteOrder.LITTLE_ENDIAN).putLong(second + 8, u + 1);
    ByteBuffer.wrap(bad[3]).order(ByteOrder.LITTLE_ENDIAN).putLong(second, -1L);
    ByteBuffer.wrap(bad[4])
        .order(ByteOrder.LITTLE_ENDIAN)
        .putLong(second, 11); // before checkpoint 0 + 10 bits
    ByteBuffer.wrap(bad[5])
        .order(ByteOrder.LITTLE_ENDIAN)
        .putLong(12 + 8, 5); // first checkpoint not at out 0
    String[] want = {
      "outside the layer",
      "outside the layer",
      "outside the layer",
      "outside the layer",
      "out of order",
      "not at the start"
    };
    for (int i = 0; i < bad.length; i++) {
      String m = error(bad[i], c, u);
      assertTrue(m.contains(want[i]), i + ": " + m);
    }
  }

  @Test
  void spanTablesAreStrictAndBoundToTheirZinfo() throws Exception {
    GzipIndexTest.Built b = built();
    byte[] t = b.spanTable();
    SpanTable table = SpanTable.decode(t);
    assertEquals(b.result().checkpoints().size(), table.spanDigests().size());
    assertArrayEquals(t, table.encode());
    assertThrows(
        IndexFormatException.class, () -> SpanTable.decode(Arrays.copyOf(t, t.length - 1)));
    assertThrows(IndexFormatException.class, () -> SpanTable.decode(Arrays.copyOf(t, 50)));
    byte[] magic = t.clone();
    magic[0] = 'X';
    assertThrows(IndexFormatException.class, () -> SpanTable.decode(magic));
    byte[] version = t.clone();
    version[8] = 2;
    assertTrue(
        assertThrows(IndexFormatException.class, () -> SpanTable.decode(version))
            .getMessage()
            .contains("version 2"));
    byte[] count = t.clone();
    ByteBuffer.wrap(count).order(ByteOrder.LITTLE_ENDIAN).putInt(12, -1);
    assertThrows(IndexFormatException.class, () -> SpanTable.decode(count));
    // Another zinfo (one window byte changed) is refused: the table names its zinfo's digest.
    byte[] z = b.zinfo().clone();
    z[12 + Zinfo.CHECKPOINT_SIZE + 17 + 5000] ^= 1;
    assertTrue(
        assertThrows(IndexFormatException.class, () -> GzipIndex.read(z, t))
            .getMessage()
            .contains("another zinfo"));
  }
}

package dev.lazypull.gzindex;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.SequenceInputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.zip.CRC32;
import java.util.zip.Deflater;
import org.junit.jupiter.api.Test;

/**
 * Corrupt and hostile gzip streams and indexes: each must end in a clear GzipFormatException or
 * IndexFormatException (never another exception, a hang, a large allocation or wrong bytes).
 */
class HostileGzipTest {
  private static final GzipIndexer.Options SMALL_SPAN =
      GzipIndexer.Options.defaults().withSpan(50_000);

  private static GzipIndexer.Result index(byte[] gz, GzipIndexer.Options o) throws IOException {
    return GzipIndexer.index(new ByteArrayInputStream(gz), o, (i, cp, w) -> {});
  }

  private static String indexError(byte[] gz) {
    return assertThrows(GzipFormatException.class, () -> index(gz, SMALL_SPAN)).getMessage();
  }

  private static byte[] sample() throws IOException {
    return GzipSamples.javaGzip(GzipSamples.data(300_000, 11));
  }

  @Test
  void trailerChecksCatchWrongCrcAndLength() throws Exception {
    byte[] gz = sample();
    byte[] crc = gz.clone();
    crc[crc.length - 8] ^= 1;
    assertTrue(indexError(crc).contains("CRC32 mismatch"), indexError(crc));
    byte[] len = gz.clone();
    len[len.length - 1] ^= 1;
    assertTrue(indexError(len).contains("length mismatch"), indexError(len));
  }

  @Test
  void everyTruncationIsAnErrorNamingTheOffset() throws Exception {
    byte[] gz =
        GzipSamples.concat(
            List.of(
                GzipSamples.javaGzip(GzipSamples.data(20_000, 12)),
                GzipSamples.deflaterGzip(
                    GzipSamples.data(30_000, 13),
                    0,
                    Deflater.DEFAULT_STRATEGY,
                    Deflater.NO_FLUSH,
                    1 << 20)));
    index(gz, SMALL_SPAN);
    for (int n = 0; n < gz.length; n += n < 200 ? 1 : 97) {
      String m = indexError(Arrays.copyOf(gz, n));
      assertTrue(
          m.contains("truncated") || m.contains("empty input") || m.contains("not a gzip"),
          n + ": " + m);
    }
  }

  @Test
  void headerAndTrailingBytesAreChecked() throws Exception {
    byte[] gz = sample();
    assertTrue(indexError(new byte[0]).contains("empty input"));
    byte[] magic = gz.clone();
    magic[1] = (byte) 0x8c;
    assertTrue(indexError(magic).contains("not a gzip stream"));
    byte[] method = gz.clone();
    method[2] = 7;
    assertTrue(indexError(method).contains("unknown compression method 7"));
    byte[] flags = gz.clone();
    flags[3] = (byte) 0x80;
    assertTrue(indexError(flags).contains("reserved flags"));
    List<byte[]> parts = new ArrayList<>();
    byte[] hcrc = GzipIndexTest.headerWithAllFields(parts, new byte[1000]);
    index(hcrc, SMALL_SPAN);
    hcrc[12] ^= 1; // inside FEXTRA, covered by the header CRC
    assertTrue(indexError(hcrc).contains("header CRC mismatch"));
    byte[] zeros = GzipSamples.concat(List.of(gz, new byte[16]));
    assertTrue(indexError(zeros).contains("not another gzip member"), indexError(zeros));
    byte[] junk = GzipSamples.concat(List.of(gz, new byte[] {0x1f}));
    assertTrue(indexError(junk).contains("truncated in the header of member 2"), indexError(junk));
  }

  /** Raw deflate data after a minimal gzip header (no trailer: decoding fails first). */
  private static byte[] member(int... deflate) {
    byte[] b = new byte[10 + deflate.length + 8];
    b[0] = 0x1f;
    b[1] = (byte) 0x8b;
    b[2] = 8;
    for (int i = 0; i < deflate.length; i++) {
      b[10 + i] = (byte) deflate[i];
    }
    return b;
  }

  @Test
  void malformedDeflateConstructs() throws Exception {
    assertTrue(indexError(member(0x07)).contains("invalid block type 3"));
    // Stored, final: LEN 5, NLEN 0 (should be ~5).
    assertTrue(indexError(member(0x01, 5, 0, 0, 0)).contains("stored block length check failed"));
    // Fixed block: length code 257 (7 bits 0000001), distance code 0 (5 bits): a match with no
    // history.
    // Bits LSB-first: 1 (final), 10 (fixed = 01 LSB-first), then code 0000001 MSB-first, then
    // 00000.
    assertTrue(
        indexError(member(0x03, 0x02, 0x00, 0x00)).contains("too far back"),
        indexError(member(3, 2, 0, 0)));
    // Dynamic block with HLIT = 29 + 257 = 286 ok but HDIST = 31 + 1 = 32 > 30.
    // bits: 1 (final), 2 = "10" type, HLIT 5 bits 11101, HDIST 5 bits 11111, ...
    assertTrue(
        indexError(member(0xed, 0xfe, 0x00, 0x00)).contains("too many length or distance symbols"));
    // Dynamic block whose code length code is over-subscribed: HCLEN 4, the four lengths are all 1.
    int hdr = 1 | 2 << 1 | 0 << 3 | 0 << 8 | 0 << 13; // final, dynamic, HLIT 257, HDIST 1, HCLEN 4
    long bits = hdr | 1L << 17 | 1L << 20 | 1L << 23 | 1L << 26;
    assertTrue(
        indexError(
                member(
                    (int) bits & 0xff,
                    (int) (bits >>> 8) & 0xff,
                    (int) (bits >>> 16) & 0xff,
                    (int) (bits >>> 24) & 0xff,
                    0,
                    0))
            .contains("over-subscribed code length code"));
  }

  @Test
  void randomCorruptionGivesOnlyFormatErrors() throws Exception {
    byte[] gz =
        GzipSamples.concat(List.of(sample(), GzipSamples.javaGzip(GzipSamples.data(50_000, 14))));
    Random r = new Random(15);
    int failed = 0;
    for (int k = 0; k < 400; k++) {
      byte[] bad = gz.clone();
      for (int j = 0, n = 1 + r.nextInt(4); j < n; j++) {
        bad[10 + r.nextInt(bad.length - 10)] ^= (byte) (1 << r.nextInt(8));
      }
      try {
        index(bad, SMALL_SPAN);
      } catch (GzipFormatException e) {
        failed++;
      }
    }
    assertTrue(
        failed >= 395,
        failed + " of 400 corruptions detected"); // a CRC32 collision is all that slips
  }

  @Test
  void zipBombStopsAtTheLimit() throws Exception {
    Deflater d = new Deflater(9, true);
    byte[] zeros = new byte[1 << 20];
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    bo.write(new byte[] {0x1f, (byte) 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}, 0, 10);
    byte[] buf = new byte[65536];
    for (int i = 0; i < 200; i++) { // 200 MiB of zeros in about 200 KiB
      d.setInput(zeros);
      while (!d.needsInput()) {
        bo.write(buf, 0, d.deflate(buf));
      }
    }
    d.finish();
    while (!d.finished()) {
      bo.write(buf, 0, d.deflate(buf));
    }
    byte[] bomb = bo.toByteArray();
    assertTrue(bomb.length < 400_000, bomb.length + " bytes");
    String m =
        assertThrows(
                GzipFormatException.class,
                () -> index(bomb, new GzipIndexer.Options(1 << 20, false, 16 << 20)))
            .getMessage();
    assertTrue(m.contains("expands beyond 16777216 bytes"), m);
  }

  @Test
  void indexerReadsInBoundedMemoryWhateverTheStreamLength() throws Exception {
    // 256 MiB of uncompressed output, indexed in a JVM whose heap is 48 MiB: an indexer that held
    // its output (or a growing part of it) dies with OutOfMemoryError instead of printing the
    // count.
    Process p =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx48m",
                "-cp",
                System.getProperty("java.class.path"),
                LongStreamChild.class.getName())
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    assertEquals(0, p.waitFor(), out);
    String[] f = out.split(" ");
    assertEquals(Long.toString(256L << 20), f[0], out);
    assertTrue(Integer.parseInt(f[1]) >= 60, f[1] + " checkpoints for 256 MiB at 4 MiB");
    assertEquals(f[1], f[2], "every checkpoint reached the sink");
  }

  /** Indexes a 256 MiB gzip stream generated on the fly; prints size, checkpoints, sink calls. */
  static final class LongStreamChild {
    public static void main(String[] args) throws IOException {
      Deflater d = new Deflater(1, true);
      byte[] chunk = GzipSamples.data(1 << 20, 16);
      CRC32 crc = new CRC32();
      ByteArrayOutputStream bo = new ByteArrayOutputStream();
      bo.write(new byte[] {0x1f, (byte) 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}, 0, 10);
      byte[] buf = new byte[1 << 16];
      d.setInput(chunk);
      int n;
      do { // full flush: byte-aligned, no history — the body can be repeated
        n = d.deflate(buf, 0, buf.length, Deflater.FULL_FLUSH);
        bo.write(buf, 0, n);
      } while (n == buf.length || !d.needsInput());
      byte[] body = Arrays.copyOfRange(bo.toByteArray(), 10, bo.size());
      int copies = 256; // 256 MiB out
      for (int i = 0; i < copies; i++) {
        crc.update(chunk);
      }
      byte[] tail = {3, 0}; // an empty final fixed block
      InputStream stream =
          new SequenceInputStream(
              Collections.enumeration(
                  List.of(
                      new ByteArrayInputStream(Arrays.copyOf(bo.toByteArray(), 10)),
                      new InputStream() {
                        int n;
                        int pos;

                        @Override
                        public int read() {
                          throw new UnsupportedOperationException();
                        }

                        @Override
                        public int read(byte[] b, int off, int len) {
                          if (n == copies) {
                            return -1;
                          }
                          int k = Math.min(len, body.length - pos);
                          System.arraycopy(body, pos, b, off, k);
                          pos += k;
                          if (pos == body.length) {
                            pos = 0;
                            n++;
                          }
                          return k;
                        }
                      },
                      new ByteArrayInputStream(tail),
                      new ByteArrayInputStream(trailer(crc.getValue(), (long) copies << 20)))));
      int[] count = {0};
      GzipIndexer.Result res =
          GzipIndexer.index(stream, GzipIndexer.Options.defaults(), (i, cp, w) -> count[0]++);
      System.out.println(res.uncompressedSize() + " " + res.checkpoints().size() + " " + count[0]);
    }
  }

  private static byte[] trailer(long crc, long size) {
    byte[] t = new byte[8];
    for (int i = 0; i < 4; i++) {
      t[i] = (byte) (crc >>> (8 * i));
      t[4 + i] = (byte) (size >>> (8 * i));
    }
    return t;
  }

  // ------------------------------------------------------------------------------------------ span
  // reader

  @Test
  void tamperedSpanIsRefusedAndOtherSpansStillServe() throws Exception {
    byte[] plain = GzipSamples.data(1 << 20, 17);
    byte[] gz = GzipSamples.javaGzip(plain);
    GzipIndexTest.Built b =
        GzipIndexTest.build(gz, GzipIndexer.Options.defaults().withSpan(20_000));
    GzipIndex ix = b.index();
    assertTrue(ix.spans() >= 5, ix.spans() + " spans");
    byte[] bad = gz.clone();
    bad[(int) (ix.compressedStart(3) + ix.compressedEnd(3)) / 2] ^= 0x10;
    SpanReader r = new SpanReader(ix, ByteRangeReader.of(bad));
    long u = ix.uncompressedStart(3) + 10;
    String m = assertThrows(SpanIntegrityException.class, () -> r.read(u, 100)).getMessage();
    assertTrue(m.contains("span 3"), m);
    assertThrows(
        SpanIntegrityException.class,
        () -> r.read(ix.uncompressedStart(2), (int) (u - ix.uncompressedStart(2))));
    long u1 = ix.uncompressedStart(1);
    assertArrayEquals(Arrays.copyOfRange(plain, (int) u1, (int) u1 + 5000), r.read(u1, 5000));
  }

  /**
   * Rewrites checkpoint {@code k} of a zinfo and makes a span table that vouches for the result.
   */
  private static GzipIndex withCheckpoint(GzipIndexTest.Built b, int k, long in, int bits, long out)
      throws Exception {
    byte[] z = b.zinfo().clone();
    ByteBuffer bb = ByteBuffer.wrap(z).order(ByteOrder.LITTLE_ENDIAN);
    int at = Zinfo.HEADER_SIZE + k * Zinfo.CHECKPOINT_SIZE;
    bb.putLong(at, in).putLong(at + 8, out).put(at + 16, (byte) bits);
    SpanTable t = SpanTable.decode(b.spanTable());
    SpanTable forged =
        new SpanTable(
            t.spanSize(),
            t.compressedSize(),
            t.uncompressedSize(),
            t.layerSha256(),
            MessageDigest.getInstance("SHA-256").digest(z),
            t.spanDigests());
    return GzipIndex.read(z, forged.encode());
  }

  @Test
  void wrongCheckpointsGiveErrorsNotWrongBytes() throws Exception {
    byte[] plain = GzipSamples.data(1 << 20, 18);
    byte[] gz = GzipSamples.gzipTool(plain, 6, Files.createTempDirectory("gzidx"));
    GzipIndexTest.Built b = GzipIndexTest.build(gz, SMALL_SPAN);
    int tried = 0;
    for (int k = 1; k < b.index().spans() - 1; k++) {
      Checkpoint cp = b.index().checkpoint(k);
      long[][] mutations = {
        {cp.in(), (cp.bits() + 1) % 8, cp.out()},
        {cp.in() + 1, cp.bits(), cp.out()},
        {cp.in() - 1, cp.bits(), cp.out()},
        {cp.in(), cp.bits(), cp.out() + 1},
        {cp.in(), cp.bits(), cp.out() - 7}
      };
      for (long[] m : mutations) {
        GzipIndex bad;
        try {
          bad = withCheckpoint(b, k, m[0], (int) m[1], m[2]);
        } catch (IndexFormatException e) {
          continue; // refused when read (out of order): fine too
        }
        SpanReader r = new SpanReader(bad, ByteRangeReader.of(gz));
        for (long u :
            new long[] {
              bad.uncompressedStart(k),
              bad.uncompressedStart(k) + 1000,
              bad.uncompressedStart(k) - 500
            }) {
          byte[] got;
          try {
            got = r.read(u, 300);
          } catch (SpanIntegrityException e) {
            continue; // the moved boundary moved the span's bytes: the digest no longer matches
          } catch (GzipFormatException e) {
            tried++;
            continue;
          }
          assertArrayEquals(
              Arrays.copyOfRange(plain, (int) u, (int) u + 300),
              got,
              "checkpoint " + k + " changed to " + Arrays.toString(m) + ", read at " + u);
        }
      }
    }
    assertTrue(tried > 20, tried + " reads refused");
  }

  @Test
  void readsOutsideTheLayerAndHugeSpansAreRefused() throws Exception {
    byte[] plain = GzipSamples.data(200_000, 19);
    byte[] gz = GzipSamples.javaGzip(plain);
    GzipIndexTest.Built b = GzipIndexTest.build(gz, GzipIndexer.Options.defaults());
    SpanReader r = new SpanReader(b.index(), ByteRangeReader.of(gz));
    assertThrows(IllegalArgumentException.class, () -> r.read(plain.length - 10, 11));
    assertThrows(IllegalArgumentException.class, () -> r.read(-1, 1));
    SpanReader small = new SpanReader(b.index(), ByteRangeReader.of(gz), 1000, true);
    String m = assertThrows(GzipFormatException.class, () -> small.read(0, 10)).getMessage();
    assertTrue(m.contains("fetch limit"), m);
    // A source that serves a short layer: the reader fails when the range read fails.
    SpanReader shortSource =
        new SpanReader(b.index(), ByteRangeReader.of(Arrays.copyOf(gz, gz.length - 9)));
    assertThrows(EOFException.class, () -> shortSource.read(0, 10));
  }
}

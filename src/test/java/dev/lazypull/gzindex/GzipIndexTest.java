package dev.lazypull.gzindex;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.zip.CRC32;
import java.util.zip.Deflater;
import java.util.zip.Inflater;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Indexing and random access against gzip(1) at several levels, zlib through Java
 * (GZIPOutputStream, stored, Huffman-only, filtered, sync and full flushes), concatenated members,
 * tiny and empty members: every read at and around every checkpoint, whole spans and random ranges
 * must equal the plain data, and each checkpoint must also work the way SOCI and erofs-utils use it
 * (zlib: inflatePrime's bits — here a shifted copy — and the window).
 */
class GzipIndexTest {
  @TempDir Path tmp;
  static long zlibShiftedBytes;

  /** An index built in memory, serialized and read back as a reader would get it. */
  record Built(
      GzipIndexer.Result result,
      byte[] plain,
      byte[] zinfo,
      byte[] spanTable,
      GzipIndex index,
      List<byte[]> windows) {}

  static Built build(byte[] gz, GzipIndexer.Options options) throws Exception {
    List<byte[]> windows = new ArrayList<>();
    Zinfo.Memory mem = new Zinfo.Memory(options.span());
    GzipIndexer ix =
        new GzipIndexer(
            new ByteArrayInputStream(gz),
            options,
            (i, cp, w) -> {
              assertEquals(windows.size(), i);
              windows.add(w.clone());
              mem.accept(i, cp, w);
            });
    byte[] plain = ix.readAllBytes();
    GzipIndexer.Result r = ix.finish();
    byte[] zinfo = mem.encode();
    byte[] table = SpanTable.of(r, MessageDigest.getInstance("SHA-256").digest(zinfo)).encode();
    return new Built(r, plain, zinfo, table, GzipIndex.read(zinfo, table), windows);
  }

  static byte[] sha(byte[] b) throws Exception {
    return MessageDigest.getInstance("SHA-256").digest(b);
  }

  /**
   * Builds, checks the stream facts, and reads every checkpoint neighbourhood, every span and
   * random ranges.
   */
  static Built check(byte[] gz, byte[] plain, GzipIndexer.Options options) throws Exception {
    Built b = build(gz, options);
    GzipIndexer.Result r = b.result();
    assertArrayEquals(plain, b.plain(), "the indexer's output is the uncompressed stream");
    assertEquals(plain.length, r.uncompressedSize());
    assertEquals(gz.length, r.compressedSize());
    assertArrayEquals(sha(gz), r.sha256(), "layer digest");
    List<Checkpoint> cps = r.checkpoints();
    assertEquals(0, cps.get(0).out());
    for (int i = 1; i < cps.size(); i++) {
      assertTrue(cps.get(i).bitPosition() > cps.get(i - 1).bitPosition());
      if (!options.checkpointEveryMember()) {
        assertTrue(
            cps.get(i).out() - cps.get(i - 1).out() > options.span(),
            "checkpoints are a span apart");
      }
    }
    if (!options.checkpointEveryMember()
        && plain.length > 4 * options.span()
        && r.members() == 1
        && options.span() > 10_000) {
      assertTrue(cps.size() >= plain.length / options.span() / 4, cps.size() + " checkpoints");
    }
    for (int i = 0; i < cps.size(); i++) {
      checkWithZlib(gz, plain, cps.get(i), b.windows().get(i));
    }
    SpanReader reader = new SpanReader(b.index(), ByteRangeReader.of(gz));
    SpanReader fast = new SpanReader(b.index(), ByteRangeReader.of(gz), 1 << 20, false);
    GzipIndex ix = b.index();
    for (int i = 0; i < ix.spans(); i++) {
      long u = ix.uncompressedStart(i);
      long e = ix.uncompressedEnd(i);
      expect(reader, plain, u, (int) Math.min(4096, e - u));
      expect(fast, plain, u, (int) Math.min(4096, e - u));
      expect(reader, plain, u - 100, 200);
      expect(fast, plain, u - 1, 2);
      expect(reader, plain, u, (int) (e - u));
      expect(reader, plain, e - 10, 10);
    }
    Random rnd = new Random(plain.length);
    for (int k = 0; k < 60 && plain.length > 0; k++) {
      long u = (long) (rnd.nextDouble() * plain.length);
      int len = rnd.nextInt(k % 3 == 0 ? 300_000 : 5000);
      expect(k % 2 == 0 ? reader : fast, plain, u, len);
    }
    expect(reader, plain, 0, plain.length);
    return b;
  }

  static void expect(SpanReader reader, byte[] plain, long u, int len) throws Exception {
    u = Math.max(0, Math.min(u, plain.length));
    len = (int) Math.max(0, Math.min(len, plain.length - u));
    byte[] got = reader.read(u, len);
    assertArrayEquals(
        Arrays.copyOfRange(plain, (int) u, (int) u + len), got, "bytes " + u + "+" + len);
  }

  /**
   * Starts zlib at the checkpoint the way SOCI/erofs-utils do (inflatePrime(bits, byte[in-1] >> (8
   * - bits)), inflateSetDictionary(window)) and compares its output with the plain data. Java has
   * no inflatePrime, so an unaligned checkpoint is given to zlib as a copy shifted to bit 0 — which
   * keeps the bits but not the byte boundaries, so a stored block (aligned to the original bytes)
   * would be misread: there only the first block is compared, and not at all if it is a stored one.
   */
  static void checkWithZlib(byte[] gz, byte[] plain, Checkpoint cp, byte[] window)
      throws Exception {
    int start = (int) cp.firstByte();
    int skip = cp.bits() == 0 ? 0 : 8 - cp.bits();
    int want = (int) Math.min(65536, plain.length - cp.out());
    if (skip != 0) {
      long bit = cp.bitPosition();
      int pair = (gz[(int) (bit >>> 3)] & 0xff) | (gz[(int) (bit >>> 3) + 1] & 0xff) << 8;
      int type = (pair >>> (int) (bit & 7) >>> 1) & 3;
      if (type == 0) {
        return;
      }
    }
    int n = Math.min(gz.length - start, 70_000);
    if (skip != 0) {
      long[] block = firstBlock(gz, cp, window);
      want = (int) Math.min(want, block[0]);
      n =
          (int)
              Math.min(
                  n,
                  (block[1] - cp.bitPosition() + 7) / 8 + 1); // zlib must not see the next header
      zlibShiftedBytes += want;
    }
    byte[] shifted = new byte[n];
    for (int i = 0; i < n; i++) {
      int lo = (gz[start + i] & 0xff) >>> skip;
      int hi = start + i + 1 < gz.length ? (gz[start + i + 1] & 0xff) << (8 - skip) : 0;
      shifted[i] = (byte) (skip == 0 ? gz[start + i] : lo | hi);
    }
    Inflater inf = new Inflater(true);
    inf.setDictionary(window);
    inf.setInput(shifted);
    byte[] out = new byte[want];
    int got = 0;
    try {
      while (got < want && !inf.finished()) {
        int k = inf.inflate(out, got, want - got);
        if (k == 0 && (inf.needsInput() || inf.needsDictionary())) {
          break;
        }
        got += k;
      }
    } finally {
      inf.end();
    }
    if (!inf.finished()) {
      assertEquals(want, got, "zlib output from " + cp);
    }
    assertArrayEquals(
        Arrays.copyOfRange(plain, (int) cp.out(), (int) cp.out() + got),
        Arrays.copyOf(out, got),
        "zlib from checkpoint " + cp);
  }

  /**
   * The first block after a checkpoint: {output bytes (at most about 64 KiB), end bit position}.
   */
  static long[] firstBlock(byte[] gz, Checkpoint cp, byte[] window) throws Exception {
    DeflateDecoder d =
        new DeflateDecoder(
            new ByteArrayInputStream(gz, (int) cp.firstByte(), gz.length)::read,
            cp.firstByte(),
            null);
    d.startAt(cp.bits() == 0 ? 0 : 8 - cp.bits(), window, cp.out());
    assertEquals(DeflateDecoder.BOUNDARY, d.next());
    while (d.next() == DeflateDecoder.DATA && d.outPosition() - cp.out() < 65536) {
      // the first block's output comes as DATA events, then its end as BOUNDARY or END
    }
    return new long[] {d.outPosition() - cp.out(), d.bitPosition()};
  }

  private static GzipIndexer.Options span(long s) {
    return GzipIndexer.Options.defaults().withSpan(s);
  }

  @Test
  void gzipLevelsOneSixNine() throws Exception {
    byte[] plain = GzipSamples.data(3 << 20, 1);
    zlibShiftedBytes = 0;
    for (int level : new int[] {1, 6, 9}) {
      Built b = check(GzipSamples.gzipTool(plain, level, tmp), plain, span(200_000));
      assertTrue(b.result().checkpoints().size() >= 5, "level " + level);
      assertTrue(
          b.result().checkpoints().stream().anyMatch(c -> c.bits() != 0),
          "some checkpoints inside a byte");
    }
    assertTrue(
        zlibShiftedBytes > 100_000, "zlib decoded from unaligned checkpoints: " + zlibShiftedBytes);
  }

  @Test
  void zlibThroughJavaAllBlockKinds() throws Exception {
    byte[] plain = GzipSamples.data(2 << 20, 2);
    check(GzipSamples.javaGzip(plain), plain, span(150_000));
    check(
        GzipSamples.deflaterGzip(plain, 0, Deflater.DEFAULT_STRATEGY, Deflater.NO_FLUSH, 1 << 20),
        plain,
        span(100_000)); // stored blocks only
    check(
        GzipSamples.deflaterGzip(plain, 6, Deflater.HUFFMAN_ONLY, Deflater.NO_FLUSH, 1 << 20),
        plain,
        span(100_000));
    check(
        GzipSamples.deflaterGzip(plain, 9, Deflater.FILTERED, Deflater.NO_FLUSH, 1 << 20),
        plain,
        span(300_000));
    check(
        GzipSamples.deflaterGzip(plain, 4, Deflater.DEFAULT_STRATEGY, Deflater.SYNC_FLUSH, 10_000),
        plain,
        span(64_000)); // empty stored blocks at byte boundaries
    check(
        GzipSamples.deflaterGzip(plain, 6, Deflater.DEFAULT_STRATEGY, Deflater.FULL_FLUSH, 77_777),
        plain,
        span(1)); // a checkpoint at every block boundary
  }

  @Test
  void fixedHuffmanBlocks() throws Exception {
    // Small inputs make zlib choose fixed codes; sync-flushing every 200 bytes gives many fixed
    // blocks.
    byte[] plain = GzipSamples.data(300_000, 3);
    Built b =
        check(
            GzipSamples.deflaterGzip(plain, 6, Deflater.DEFAULT_STRATEGY, Deflater.SYNC_FLUSH, 200),
            plain,
            span(20_000));
    assertTrue(b.result().checkpoints().size() > 10);
  }

  @Test
  void concatenatedMembersAsEstargzWritesThem() throws Exception {
    Random r = new Random(4);
    List<byte[]> parts = new ArrayList<>();
    List<byte[]> gzs = new ArrayList<>();
    for (int i = 0; i < 12; i++) {
      int size = i % 4 == 0 ? 0 : i % 4 == 1 ? 1 : r.nextInt(400_000);
      byte[] p = GzipSamples.data(size, 40 + i);
      parts.add(p);
      gzs.add(
          i % 3 == 0
              ? GzipSamples.javaGzip(p)
              : i % 3 == 1
                  ? GzipSamples.gzipTool(p, 6, tmp)
                  : GzipSamples.deflaterGzip(
                      p, 9, Deflater.DEFAULT_STRATEGY, Deflater.NO_FLUSH, 1 << 20));
    }
    gzs.add(headerWithAllFields(parts, GzipSamples.data(100_000, 99)));
    byte[] gz = GzipSamples.concat(gzs);
    byte[] plain = GzipSamples.concat(parts);
    Built spanOnly = check(gz, plain, span(120_000));
    assertEquals(13, spanOnly.result().members());
    Built every = check(gz, plain, new GzipIndexer.Options(120_000, true, Long.MAX_VALUE));
    assertTrue(every.result().checkpoints().size() >= 13, "a checkpoint at every member start");
    // The window at a member start is empty: nothing before it can be referenced.
    long at = 0;
    int found = 0;
    for (int i = 0; i < gzs.size(); i++) {
      for (int k = 0; k < every.result().checkpoints().size(); k++) {
        Checkpoint cp = every.result().checkpoints().get(k);
        if (cp.out() == at && k > 0 && every.result().checkpoints().get(k - 1).out() < at) {
          assertArrayEquals(new byte[Zinfo.WINDOW_SIZE], every.windows().get(k));
          found++;
        }
      }
      at += parts.get(i).length;
    }
    assertTrue(found >= 5, "member-start checkpoints found: " + found);
  }

  /** A member with FEXTRA, FNAME, FCOMMENT and FHCRC; adds its data to {@code parts}. */
  static byte[] headerWithAllFields(List<byte[]> parts, byte[] data) {
    ByteArrayOutputStream h = new ByteArrayOutputStream();
    h.write(new byte[] {0x1f, (byte) 0x8b, 8, 4 | 8 | 16 | 2, 1, 2, 3, 4, 0, 3}, 0, 10);
    h.write(new byte[] {5, 0, 'a', 'b', 'c', 'd', 'e'}, 0, 7);
    h.write(new byte[] {'n', 'a', 'm', 'e', 0, 'c', 0}, 0, 7);
    CRC32 c = new CRC32();
    c.update(h.toByteArray());
    h.write((int) c.getValue() & 0xff);
    h.write((int) (c.getValue() >>> 8) & 0xff);
    byte[] member =
        GzipSamples.deflaterGzip(data, 6, Deflater.DEFAULT_STRATEGY, Deflater.NO_FLUSH, 1 << 20);
    h.write(member, 10, member.length - 10);
    parts.add(data);
    return h.toByteArray();
  }

  @Test
  void tinyAndEmptyStreams() throws Exception {
    Built empty = check(GzipSamples.javaGzip(new byte[0]), new byte[0], span(1024));
    assertEquals(List.of(new Checkpoint(10, 0, 0)), empty.result().checkpoints());
    assertEquals(0, empty.index().uncompressedSize());
    assertArrayEquals(
        new byte[0], new SpanReader(empty.index(), ByteRangeReader.of(new byte[0])).read(0, 0));
    check(GzipSamples.javaGzip(new byte[] {42}), new byte[] {42}, span(1));
    byte[] three =
        GzipSamples.concat(
            List.of(
                GzipSamples.javaGzip(new byte[0]),
                GzipSamples.javaGzip(new byte[0]),
                GzipSamples.javaGzip(new byte[] {7})));
    Built b = check(three, new byte[] {7}, new GzipIndexer.Options(1, true, Long.MAX_VALUE));
    assertEquals(3, b.result().members());
  }

  @Test
  void firstCheckpointFollowsTheHeaderLikeZran() throws Exception {
    byte[] plain = GzipSamples.data(500_000, 5);
    byte[] gz =
        GzipSamples.gzipTool(plain, 6, tmp); // FNAME set: the header is longer than 10 bytes
    assertEquals(8, gz[3] & 8);
    int nameEnd = 10;
    while (gz[nameEnd] != 0) {
      nameEnd++;
    }
    Built b = build(gz, GzipIndexer.Options.defaults());
    assertEquals(new Checkpoint(nameEnd + 1, 0, 0), b.result().checkpoints().get(0));
    assertEquals(1, b.result().checkpoints().size(), "500 kB is less than one 4 MiB span");
    assertArrayEquals(new byte[Zinfo.WINDOW_SIZE], b.windows().get(0));
  }

  @Test
  void spanDigestsCoverEachSpansCompressedBytes() throws Exception {
    byte[] plain = GzipSamples.data(1 << 20, 6);
    byte[] gz = GzipSamples.javaGzip(plain);
    Built b = build(gz, span(100_000));
    GzipIndex ix = b.index();
    for (int i = 0; i < ix.spans(); i++) {
      byte[] want =
          MessageDigest.getInstance("SHA-256")
              .digest(
                  Arrays.copyOfRange(gz, (int) ix.compressedStart(i), (int) ix.compressedEnd(i)));
      assertArrayEquals(want, ix.spanDigest(i), "span " + i);
    }
    assertEquals(gz.length, ix.compressedEnd(ix.spans() - 1));
  }
}

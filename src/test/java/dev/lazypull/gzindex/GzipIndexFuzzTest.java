package dev.lazypull.gzindex;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.fuzz.Fuzzer;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;
import org.junit.jupiter.api.Test;

/**
 * Fuzzes the gzip index code on mutated inputs: the deflate decoder (which must agree with zlib
 * whenever it accepts a stream), the indexer, the zinfo and span table decoders, and the span
 * reader on corrupt spans that the index vouches for. Only IOExceptions may come out.
 */
class GzipIndexFuzzTest {
  private static byte[] raw(byte[] data, int level, int strategy, int flush) {
    Deflater d = new Deflater(level, true);
    d.setStrategy(strategy);
    d.setInput(data);
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    byte[] buf = new byte[4096];
    int n;
    do {
      n = d.deflate(buf, 0, buf.length, flush);
      bo.write(buf, 0, n);
    } while (n == buf.length || !d.needsInput());
    d.finish();
    while (!d.finished()) {
      bo.write(buf, 0, d.deflate(buf));
    }
    d.end();
    return bo.toByteArray();
  }

  private static List<byte[]> rawSeeds() {
    byte[] data = GzipSamples.data(6000, 31);
    return List.of(
        raw(data, 6, Deflater.DEFAULT_STRATEGY, Deflater.NO_FLUSH),
        raw(data, 1, Deflater.DEFAULT_STRATEGY, Deflater.SYNC_FLUSH),
        raw(data, 0, Deflater.DEFAULT_STRATEGY, Deflater.NO_FLUSH),
        raw(data, 9, Deflater.HUFFMAN_ONLY, Deflater.NO_FLUSH),
        raw(Arrays.copyOf(data, 40), 6, Deflater.DEFAULT_STRATEGY, Deflater.NO_FLUSH));
  }

  /** Decodes a raw deflate stream to its end with our decoder; null if it refused it. */
  private static byte[] ours(byte[] raw) throws IOException {
    DeflateDecoder d = new DeflateDecoder(new ByteArrayInputStream(raw)::read, 0, null);
    d.startStream(0);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    while (true) {
      int ev = d.next();
      out.write(d.buffer(), d.dataStart(), d.dataEnd() - d.dataStart());
      if (ev == DeflateDecoder.END) {
        return out.toByteArray();
      }
    }
  }

  @Test
  void deflateDecoderAgreesWithZlib() {
    long runs =
        Fuzzer.fuzz(
            "deflate",
            rawSeeds(),
            Set.of(GzipFormatException.class),
            16_384,
            input -> {
              byte[] mine = ours(input); // throws GzipFormatException when refused
              Inflater inf = new Inflater(true);
              inf.setInput(
                  Arrays.copyOf(input, input.length + 1)); // nowrap zlib wants one byte of slack
              byte[] theirs = new byte[mine.length];
              int got = 0;
              try {
                while (got < theirs.length) {
                  int k = inf.inflate(theirs, got, theirs.length - got);
                  if (k == 0 && (inf.finished() || inf.needsInput())) {
                    break;
                  }
                  got += k;
                }
                if (got == theirs.length && !inf.finished()) {
                  inf.inflate(
                      new byte
                          [1]); // zlib reaches the end of the final block only when asked for more
                }
              } catch (DataFormatException e) {
                throw new AssertionError("we accepted a stream zlib rejects: " + e.getMessage());
              } finally {
                inf.end();
              }
              assertTrue(inf.finished() || got == theirs.length, "zlib agrees on the end");
              assertArrayEquals(mine, theirs, "same output as zlib");
            });
    assertTrue(runs > 10, runs + " runs"); // that it ran: the count depends on the machine
  }

  @Test
  void indexerFailsOnlyWithFormatErrors() throws IOException {
    List<byte[]> seeds = new ArrayList<>();
    for (byte[] r : rawSeeds()) {
      ByteArrayOutputStream bo = new ByteArrayOutputStream();
      bo.write(new byte[] {0x1f, (byte) 0x8b, 8, 0, 0, 0, 0, 0, 0, 3});
      bo.write(r);
      GzipSamples.trailer(bo, ours(r));
      seeds.add(bo.toByteArray());
    }
    seeds.add(GzipSamples.concat(List.of(seeds.get(0), seeds.get(4), seeds.get(4))));
    long runs =
        Fuzzer.fuzz(
            "gzip-indexer",
            seeds,
            Set.of(GzipFormatException.class),
            32_768,
            input ->
                GzipIndexer.index(
                    new ByteArrayInputStream(input),
                    new GzipIndexer.Options(2000, false, 1 << 20),
                    (i, cp, w) -> {}));
    assertTrue(runs > 10, runs + " runs"); // that it ran: the count depends on the machine
  }

  @Test
  void zinfoAndSpanTableDecodersFailOnlyWithIndexErrors() throws Exception {
    byte[] plain = GzipSamples.data(60_000, 32);
    byte[] gz =
        GzipSamples.deflaterGzip(plain, 6, Deflater.DEFAULT_STRATEGY, Deflater.SYNC_FLUSH, 10_000);
    GzipIndexTest.Built b =
        GzipIndexTest.build(gz, GzipIndexer.Options.defaults().withSpan(25_000));
    long c = b.result().compressedSize();
    long u = b.result().uncompressedSize();
    long runs =
        Fuzzer.fuzz(
            "zinfo",
            List.of(b.zinfo(), Arrays.copyOf(b.zinfo(), 12 + Zinfo.CHECKPOINT_SIZE)),
            Set.of(IndexFormatException.class),
            200_000,
            input -> Zinfo.read(input, c, u));
    runs +=
        Fuzzer.fuzz(
            "span-table",
            List.of(b.spanTable()),
            Set.of(IndexFormatException.class),
            4096,
            SpanTable::decode);
    assertTrue(runs > 10, runs + " runs"); // that it ran: the count depends on the machine
  }

  @Test
  void spanReaderOnCorruptSpansTheIndexVouchesFor() throws Exception {
    byte[] plain = GzipSamples.data(60_000, 33);
    byte[] gz =
        GzipSamples.deflaterGzip(plain, 6, Deflater.DEFAULT_STRATEGY, Deflater.SYNC_FLUSH, 7_000);
    GzipIndexTest.Built b =
        GzipIndexTest.build(gz, GzipIndexer.Options.defaults().withSpan(15_000));
    GzipIndex good = b.index();
    long runs =
        Fuzzer.fuzz(
            "span-reader",
            List.of(gz),
            Set.of(GzipFormatException.class),
            gz.length,
            input -> {
              if (input.length != gz.length) {
                return; // the index fixes the layer's size; only same-size corruptions are
                // interesting here
              }
              List<byte[]> digests = new ArrayList<>();
              for (int i = 0; i < good.spans(); i++) {
                digests.add(
                    MessageDigest.getInstance("SHA-256")
                        .digest(
                            Arrays.copyOfRange(
                                input,
                                (int) good.compressedStart(i),
                                (int) good.compressedEnd(i))));
              }
              SpanTable t = good.table();
              SpanTable forged =
                  new SpanTable(
                      t.spanSize(),
                      t.compressedSize(),
                      t.uncompressedSize(),
                      t.layerSha256(),
                      t.zinfoSha256(),
                      digests);
              GzipIndex ix = GzipIndex.read(b.zinfo(), forged.encode());
              SpanReader r = new SpanReader(ix, ByteRangeReader.of(input));
              for (int i = 0; i < ix.spans(); i++) {
                r.read(
                    ix.uncompressedStart(i),
                    (int) Math.min(500, ix.uncompressedEnd(i) - ix.uncompressedStart(i)));
              }
            });
    assertTrue(runs > 10, runs + " runs"); // that it ran: the count depends on the machine
  }
}

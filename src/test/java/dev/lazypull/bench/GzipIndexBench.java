package dev.lazypull.bench;

import dev.lazypull.gzindex.ByteRangeReader;
import dev.lazypull.gzindex.GzipIndex;
import dev.lazypull.gzindex.GzipIndexer;
import dev.lazypull.gzindex.SpanReader;
import dev.lazypull.gzindex.SpanTable;
import dev.lazypull.gzindex.Zinfo;
import dev.lazypull.testing.Requirements;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The gzip index on a real layer-sized tar.gz ({@code -Dbench.tree=DIR}, default /usr/share/doc,
 * tarred and gzipped at level 6 by tar(1) and gzip(1) in the run):
 *
 * <ul>
 *   <li>index speed against {@code gzip -dc > /dev/null} of the same file, wall time and CPU time
 *       (user + sys for gzip, the indexing thread's CPU time for lazypull: on a shared machine wall
 *       time mostly measures the neighbours), median of 3 alternated runs; java.util.zip's
 *       GZIPInputStream (zlib) for reference;
 *   <li>index size (zinfo + span table) ÷ compressed size at the default 4 MiB span;
 *   <li>read amplification per span size: compressed bytes fetched ÷ bytes read for random 4 KiB
 *       and 1 MiB reads, with the time per read from a local file (fetching, checking the span
 *       digest, inflating; and with and without inflating on to the span's end to check it meets
 *       the next checkpoint).
 * </ul>
 *
 * Prints the figures side by side; asserts nothing. Run: {@code mvn -Pbench test
 * -Dtest=GzipIndexBench}.
 */
@Tag("bench")
class GzipIndexBench {
  private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

  @Test
  void indexSpeedSizeAndReadAmplification() throws Exception {
    Requirements.requireTool("gzip");
    Requirements.requireTool("tar");
    Path tree = Path.of(System.getProperty("bench.tree", "/usr/share/doc"));
    Path work = Files.createTempDirectory("gzindex-bench");
    try {
      Path gz = work.resolve("layer.tar.gz");
      Requirements.run(
          "bash",
          "-c",
          "tar -C '"
              + tree.getParent()
              + "' -cf - '"
              + tree.getFileName()
              + "' 2>/dev/null | gzip -6 > '"
              + gz
              + "'");
      long compressed = Files.size(gz);
      Requirements.run(
          "bash", "-c", "cat '" + gz + "' > /dev/null"); // page cache warm for everyone
      long uncompressed = 0;
      long[][] gzip = new long[3][];
      long[][] index = new long[3][];
      long[][] zlib = new long[3][];
      for (int i = 0; i < 3; i++) {
        gzip[i] = gzipTimes(gz);
        long t0 = System.nanoTime();
        long c0 = THREADS.getCurrentThreadCpuTime();
        GzipIndexer.Result r;
        try (InputStream in = Files.newInputStream(gz)) {
          r = GzipIndexer.index(in, GzipIndexer.Options.defaults(), (k, cp, w) -> {});
        }
        index[i] = new long[] {System.nanoTime() - t0, THREADS.getCurrentThreadCpuTime() - c0};
        uncompressed = r.uncompressedSize();
        t0 = System.nanoTime();
        c0 = THREADS.getCurrentThreadCpuTime();
        try (InputStream in = new GZIPInputStream(Files.newInputStream(gz), 1 << 16)) {
          in.transferTo(OutputStreamNull.INSTANCE);
        }
        zlib[i] = new long[] {System.nanoTime() - t0, THREADS.getCurrentThreadCpuTime() - c0};
        System.out.printf(
            Locale.ROOT,
            "run %d: gzip -dc %d ms (cpu %d ms), lazypull index %d ms (cpu %d ms), "
                + "GZIPInputStream %d ms (cpu %d ms)%n",
            i + 1,
            gzip[i][0] / 1_000_000,
            gzip[i][1] / 1_000_000,
            index[i][0] / 1_000_000,
            index[i][1] / 1_000_000,
            zlib[i][0] / 1_000_000,
            zlib[i][1] / 1_000_000);
      }
      System.out.printf(
          Locale.ROOT,
          "%nlayer: tar of %s, %.1f MiB uncompressed, %.1f MiB gzip -6, %d cores%n",
          tree,
          uncompressed / 1048576.0,
          compressed / 1048576.0,
          Runtime.getRuntime().availableProcessors());
      for (int m = 0; m < 2; m++) {
        long g = median(gzip, m);
        long x = median(index, m);
        long z = median(zlib, m);
        System.out.printf(
            Locale.ROOT,
            "%-4s gzip -dc %6d ms %6.1f MB/s | lazypull index %6d ms %6.1f MB/s | "
                + "index speed / gzip -d speed: %.2fx | GZIPInputStream (zlib) %6d ms %.2fx%n",
            m == 0 ? "wall" : "cpu",
            g / 1_000_000,
            uncompressed * 1e3 / g,
            x / 1_000_000,
            uncompressed * 1e3 / x,
            (double) g / x,
            z / 1_000_000,
            (double) g / z);
      }

      // Index size at the default span, written the way `index` will: streamed to a file.
      Path zinfoPath = work.resolve("layer.zinfo");
      GzipIndexer.Result r;
      try (FileChannel ch =
              FileChannel.open(
                  zinfoPath,
                  StandardOpenOption.CREATE,
                  StandardOpenOption.WRITE,
                  StandardOpenOption.READ);
          InputStream in = Files.newInputStream(gz)) {
        Zinfo.Writer w = new Zinfo.Writer(ch, GzipIndexer.DEFAULT_SPAN);
        r = GzipIndexer.index(in, GzipIndexer.Options.defaults(), w);
        w.finish();
      }
      long zinfoSize = Files.size(zinfoPath);
      long tableSize;
      try (FileChannel ch = FileChannel.open(zinfoPath)) {
        tableSize =
            SpanTable.of(r, Zinfo.read(ch, r.compressedSize(), r.uncompressedSize()).sha256())
                .encode()
                .length;
      }
      System.out.printf(
          Locale.ROOT,
          "%nindex at 4 MiB span: %d checkpoints, zinfo %d B + span table %d B = %.2f %% "
              + "of the compressed layer (goal <= 3 %%)%n",
          r.checkpoints().size(),
          zinfoSize,
          tableSize,
          100.0 * (zinfoSize + tableSize) / compressed);

      System.out.printf(
          Locale.ROOT,
          "%n%-9s %6s %9s | %-44s | %-28s%n",
          "span",
          "spans",
          "index %",
          "random 4 KiB reads",
          "random 1 MiB reads");
      System.out.printf(
          Locale.ROOT,
          "%-9s %6s %9s | %12s %15s %15s | %12s %15s%n",
          "",
          "",
          "",
          "fetched/read",
          "ms/read (p50)",
          "no span-end ms",
          "fetched/read",
          "ms/read (p50)");
      try (FileChannel layer = FileChannel.open(gz)) {
        ByteRangeReader source =
            (offset, dst, off, len) -> {
              ByteBuffer b = ByteBuffer.wrap(dst, off, len);
              while (b.hasRemaining()) {
                if (layer.read(b, offset + (b.position() - off)) < 0) {
                  throw new IOException("short layer");
                }
              }
            };
        for (long span : new long[] {1 << 20, 2 << 20, 4 << 20, 8 << 20}) {
          Zinfo.Memory mem = new Zinfo.Memory(span);
          GzipIndexer.Result rs;
          try (InputStream in = new BufferedInputStream(Files.newInputStream(gz), 1 << 16)) {
            rs = GzipIndexer.index(in, GzipIndexer.Options.defaults().withSpan(span), mem);
          }
          byte[] z = mem.encode();
          byte[] t = SpanTable.of(rs, MessageDigest.getInstance("SHA-256").digest(z)).encode();
          GzipIndex ix = GzipIndex.read(z, t);
          double[] small = reads(new SpanReader(ix, source), uncompressed, 4096, 300);
          double[] unverified =
              reads(
                  new SpanReader(ix, source, SpanReader.DEFAULT_MAX_FETCH, false),
                  uncompressed,
                  4096,
                  300);
          double[] big = reads(new SpanReader(ix, source), uncompressed, 1 << 20, 60);
          System.out.printf(
              Locale.ROOT,
              "%-9s %6d %8.2f%% | %12.1f %15.1f %15.1f | %12.2f %15.1f%n",
              (span >> 20) + " MiB",
              ix.spans(),
              100.0 * (z.length + t.length) / compressed,
              small[0],
              small[1],
              unverified[1],
              big[0],
              big[1]);
        }
      }
    } finally {
      Requirements.run("rm", "-rf", work.toString());
    }
  }

  /**
   * {compressed bytes fetched per byte read, median ms per read} over random reads of {@code len}
   * bytes.
   */
  private static double[] reads(SpanReader r, long size, int len, int n) throws IOException {
    Random rnd = new Random(42);
    byte[] buf = new byte[len];
    long[] ms = new long[n];
    long read = 0;
    for (int i = 0; i < n; i++) {
      long u = (long) (rnd.nextDouble() * (size - len));
      long t0 = System.nanoTime();
      r.read(u, buf, 0, len);
      ms[i] = System.nanoTime() - t0;
      read += len;
    }
    Arrays.sort(ms);
    return new double[] {(double) r.compressedBytesFetched() / read, ms[n / 2] / 1e6};
  }

  /** {wall, user+sys} nanoseconds of gzip -dc FILE > /dev/null. */
  private static long[] gzipTimes(Path gz) throws IOException, InterruptedException {
    long t0 = System.nanoTime();
    String out =
        Requirements.run(
            "bash", "-c", "TIMEFORMAT='%3U %3S'; time gzip -dc '" + gz + "' > /dev/null");
    long wall = System.nanoTime() - t0;
    String[] f = out.trim().split("\\s+");
    long cpu =
        (long) ((Double.parseDouble(f[f.length - 2]) + Double.parseDouble(f[f.length - 1])) * 1e9);
    return new long[] {wall, cpu};
  }

  private static long median(long[][] runs, int k) {
    long[] v = new long[runs.length];
    for (int i = 0; i < runs.length; i++) {
      v[i] = runs[i][k];
    }
    Arrays.sort(v);
    return v[v.length / 2];
  }

  private static final class OutputStreamNull extends OutputStream {
    static final OutputStreamNull INSTANCE = new OutputStreamNull();

    @Override
    public void write(int b) {}

    @Override
    public void write(byte[] b, int off, int len) {}
  }
}

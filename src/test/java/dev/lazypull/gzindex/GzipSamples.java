package dev.lazypull.gzindex;

import dev.lazypull.testing.Requirements;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.zip.CRC32;
import java.util.zip.Deflater;
import java.util.zip.GZIPOutputStream;

/**
 * Test inputs: compressible pseudo-text with binary stretches, gzipped by gzip(1) and by zlib
 * through Java.
 */
final class GzipSamples {
  private GzipSamples() {}

  /**
   * Deterministic data that compresses about 3:1, with incompressible and highly repetitive
   * stretches.
   */
  static byte[] data(int size, long seed) {
    Random r = new Random(seed);
    String[] words = new String[512];
    for (int i = 0; i < words.length; i++) {
      StringBuilder w = new StringBuilder();
      for (int j = 0, n = 2 + r.nextInt(9); j < n; j++) {
        w.append((char) ('a' + r.nextInt(26)));
      }
      words[i] = w.toString();
    }
    byte[] out = new byte[size];
    int p = 0;
    while (p < size) {
      int kind = r.nextInt(100);
      if (kind < 3) { // random bytes: stored blocks
        int n = Math.min(size - p, 1000 + r.nextInt(70000));
        for (int i = 0; i < n; i++) {
          out[p++] = (byte) r.nextInt();
        }
      } else if (kind < 5) { // a long run: long matches at distance 1
        int n = Math.min(size - p, r.nextInt(300000));
        byte b = (byte) r.nextInt();
        for (int i = 0; i < n; i++) {
          out[p++] = b;
        }
      } else {
        byte[] line =
            (words[r.nextInt(words.length)]
                    + " "
                    + words[(int) Math.abs(r.nextGaussian() * 40) % words.length]
                    + (r.nextInt(8) == 0 ? "\n" : " "))
                .getBytes(StandardCharsets.US_ASCII);
        int n = Math.min(size - p, line.length);
        System.arraycopy(line, 0, out, p, n);
        p += n;
      }
    }
    return out;
  }

  /** gzip(1) at {@code level} (the file name goes in the header: FNAME). */
  static byte[] gzipTool(byte[] data, int level, Path tmp)
      throws IOException, InterruptedException {
    Requirements.requireTool("gzip");
    Path f = Files.createTempFile(tmp, "in", ".bin");
    Files.write(f, data);
    Requirements.run("gzip", "-" + level, "-f", f.toString());
    Path gz = Path.of(f + ".gz");
    byte[] out = Files.readAllBytes(gz);
    Files.delete(gz);
    return out;
  }

  static byte[] javaGzip(byte[] data) throws IOException {
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    try (GZIPOutputStream g = new GZIPOutputStream(bo, 8192)) {
      g.write(data);
    }
    return bo.toByteArray();
  }

  /**
   * A gzip member made with zlib at a level and strategy, flushing with {@code flush} every {@code
   * every} bytes.
   */
  static byte[] deflaterGzip(byte[] data, int level, int strategy, int flush, int every) {
    Deflater d = new Deflater(level, true);
    d.setStrategy(strategy);
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    bo.write(new byte[] {0x1f, (byte) 0x8b, 8, 0, 0, 0, 0, 0, 0, (byte) 255}, 0, 10);
    byte[] buf = new byte[65536];
    for (int p = 0; p < data.length; p += every) {
      d.setInput(data, p, Math.min(every, data.length - p));
      int n;
      do { // a strategy change may take a call that consumes no input: loop until all of it is in
        n = d.deflate(buf, 0, buf.length, flush);
        bo.write(buf, 0, n);
      } while (n == buf.length || !d.needsInput());
    }
    d.finish();
    while (!d.finished()) {
      int n = d.deflate(buf);
      bo.write(buf, 0, n);
    }
    d.end();
    trailer(bo, data);
    return bo.toByteArray();
  }

  static void trailer(ByteArrayOutputStream bo, byte[] data) {
    CRC32 c = new CRC32();
    c.update(data);
    long v = c.getValue();
    for (long x : new long[] {v, data.length & 0xffffffffL}) {
      for (int i = 0; i < 4; i++) {
        bo.write((int) (x >>> (8 * i)));
      }
    }
  }

  static byte[] concat(List<byte[]> parts) {
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      bo.write(p, 0, p.length);
    }
    return bo.toByteArray();
  }
}

package dev.lazypull.bench;

import com.github.luben.zstd.Zstd;
import dev.lazypull.compress.ZstdCodec;
import io.airlift.compress.zstd.ZstdDecompressor;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Decompression speed per core of the zstd libraries lazypull could use for compressed chunks, on
 * real files: every regular file of a tree ({@code -Dbench.tree=DIR}, default the JDK 17 directory)
 * cut into chunks of {@code -Dbench.chunk} bytes (default 1 MiB; each file's last chunk zero-padded
 * to 4 KiB, as pack stores them), each compressed at {@code -Dbench.level} (default 3) as one
 * frame. Then five rounds, one thread, of decoding every frame into one direct buffer with {@link
 * ZstdCodec#decompress} (zstd-jni: zstd's C library, with all its checks) and with aircompressor's
 * pure-Java decoder (already a dependency, for zstd layers); MB/s are of uncompressed output.
 * Prints the machine load too: the machine is shared. Asserts nothing. Run: {@code mvn -Pbench test
 * -Dtest=CodecBench}.
 */
@Tag("bench")
class CodecBench {
  @Test
  void decompressionSpeedPerCore() throws Exception {
    Path tree = Path.of(System.getProperty("bench.tree", "/usr/lib/jvm/java-17-openjdk-amd64"));
    int chunk = Integer.getInteger("bench.chunk", 1 << 20);
    int level = Integer.getInteger("bench.level", ZstdCodec.DEFAULT_LEVEL);
    long t0 = System.nanoTime();
    ZstdCodec.load();
    System.out.printf(
        Locale.ROOT,
        "zstd-jni native library loaded in %.0f ms (JDK %s)%n",
        (System.nanoTime() - t0) / 1e6,
        Runtime.version());
    List<Path> files;
    try (Stream<Path> s = Files.walk(tree)) {
      files = s.filter(p -> Files.isRegularFile(p) && !Files.isSymbolicLink(p)).sorted().toList();
    }
    List<ByteBuffer> frames = new ArrayList<>();
    List<Integer> sizes = new ArrayList<>();
    long total = 0;
    long stored = 0;
    long ct = System.nanoTime();
    try (ZstdCodec.Compressor c = new ZstdCodec.Compressor(level)) {
      ByteBuffer in = ByteBuffer.allocateDirect(chunk);
      ByteBuffer out = ByteBuffer.allocateDirect((int) ZstdCodec.maxFrameLength(chunk));
      for (Path p : files) {
        byte[] b = Files.readAllBytes(p);
        for (int off = 0; off < b.length; off += chunk) {
          int len = Math.min(chunk, b.length - off);
          int padded = (len + 4095) / 4096 * 4096;
          in.clear();
          in.put(b, off, len);
          while (in.position() < padded) {
            in.put((byte) 0);
          }
          in.flip();
          c.compress(in, out.clear());
          out.flip();
          ByteBuffer f = ByteBuffer.allocateDirect(out.remaining());
          f.put(out).flip();
          frames.add(f);
          sizes.add(padded);
          total += padded;
          stored += f.remaining();
        }
      }
    }
    double csec = (System.nanoTime() - ct) / 1e9;
    System.out.printf(
        Locale.ROOT,
        "%s: %d chunks of %d KiB, %.1f MiB -> %.1f MiB at level %d (%.3f), "
            + "compressed at %.0f MB/s on one core%n",
        tree,
        frames.size(),
        chunk >> 10,
        total / 1048576.0,
        stored / 1048576.0,
        level,
        (double) stored / total,
        total / 1e6 / csec);
    ByteBuffer dst = ByteBuffer.allocateDirect(chunk);
    ZstdDecompressor air = new ZstdDecompressor();
    double bestJni = 0;
    double bestAir = 0;
    for (int round = 0; round < 5; round++) {
      long s = System.nanoTime();
      for (int i = 0; i < frames.size(); i++) {
        ZstdCodec.decompress(frames.get(i).duplicate(), dst.clear(), sizes.get(i));
      }
      double jni = total / 1e6 / ((System.nanoTime() - s) / 1e9);
      s = System.nanoTime();
      for (int i = 0; i < frames.size(); i++) {
        air.decompress(frames.get(i).duplicate(), dst.clear().limit(sizes.get(i)));
      }
      double a = total / 1e6 / ((System.nanoTime() - s) / 1e9);
      bestJni = Math.max(bestJni, jni);
      bestAir = Math.max(bestAir, a);
      System.out.printf(
          Locale.ROOT,
          "round %d: zstd-jni (ZstdCodec) %.0f MB/s, aircompressor %.0f MB/s, load %s%n",
          round,
          jni,
          a,
          Files.readString(Path.of("/proc/loadavg")).split(" ")[0]);
    }
    System.out.printf(
        Locale.ROOT,
        "best of 5: zstd-jni %.0f MB/s, aircompressor %.0f MB/s per core (zstd %s)%n",
        bestJni,
        bestAir,
        Zstd.class.getPackage().getImplementationVersion());
  }
}

package dev.lazypull.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.compress.Compression;
import dev.lazypull.compress.CorruptFrameException;
import dev.lazypull.compress.ZstdCodec;
import dev.lazypull.erofs.ByteSource;
import dev.lazypull.erofs.ErofsReader;
import dev.lazypull.erofs.FileType;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Digest;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.testing.Requirements;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Decoders of the compression work on untrusted bytes: chunk digest tables (both versions), zstd
 * frames against a declared size, and the compressed inodes of mkfs.erofs images fail only with
 * their own exceptions, and a frame never decodes past its declared size.
 */
class CompressionFuzzTest {
  @TempDir Path tmp;

  @Test
  void chunkDigestTablesFailOnlyWithInvalidImage() throws Exception {
    ChunkDigestTable.Builder v1 = new ChunkDigestTable.Builder();
    v1.add(4096, new byte[32]);
    v1.add(8192, new byte[32]);
    ChunkDigestTable.Builder v2 = new ChunkDigestTable.Builder(Compression.ZSTD);
    v2.add(4096, 30, new byte[32]);
    v2.add(1 << 20, 5000, new byte[32]);
    v2.add(8192, 8300, new byte[32]);
    long runs =
        Fuzzer.fuzz(
            "chunk-digest-table",
            List.of(v1.build().encode(), v2.build().encode()),
            Set.of(InvalidImageException.class),
            4096,
            input -> {
              long stored =
                  input.length >= 40
                      ? ByteBuffer.wrap(input)
                          .order(ByteOrder.LITTLE_ENDIAN)
                          .getLong(input.length >= 48 && input[8] == 2 ? 32 : 16)
                      : 0;
              ChunkDigestTable t = ChunkDigestTable.decode(input, stored);
              for (int i = 0; i < t.size(); i++) {
                assertTrue(t.compressedLength(i) > 0 && t.length(i) > 0);
                assertTrue(t.compressedLength(i) <= ZstdCodec.maxFrameLength(t.length(i)));
              }
            });
    assertTrue(runs > 100);
  }

  @Test
  void zstdFramesFailOnlyWithCorruptFrameAndNeverOverflow() throws Exception {
    Random r = new Random(3);
    byte[] text = new byte[20_000];
    for (int i = 0; i < text.length; i++) {
      text[i] = (byte) ('a' + r.nextInt(4));
    }
    byte[] frame;
    try (ZstdCodec.Compressor c = new ZstdCodec.Compressor(3)) {
      ByteBuffer src = ByteBuffer.allocateDirect(text.length).put(text).flip();
      ByteBuffer dst = ByteBuffer.allocateDirect((int) ZstdCodec.maxFrameLength(text.length));
      c.compress(src, dst);
      frame = new byte[dst.flip().remaining()];
      dst.get(frame);
    }
    byte[] expected = Digest.sha256().digest(text);
    ByteBuffer out = ByteBuffer.allocateDirect(text.length + 4096);
    long runs =
        Fuzzer.fuzz(
            "zstd-frame",
            List.of(frame),
            Set.of(CorruptFrameException.class),
            40_000,
            input -> {
              out.clear();
              for (int i = text.length; i < out.capacity(); i++) {
                out.put(i, (byte) 0x5a);
              }
              ByteBuffer src =
                  ByteBuffer.allocateDirect(Math.max(1, input.length)).put(input).flip();
              try {
                ZstdCodec.decompress(src, out.clear().limit(out.capacity()), text.length);
                assertEquals(text.length, out.position());
              } finally {
                out.limit(out.capacity());
                for (int i = text.length; i < out.capacity(); i++) {
                  assertEquals((byte) 0x5a, out.get(i), "nothing written past the declared size");
                }
              }
              if (Arrays.equals(input, frame)) {
                byte[] got = new byte[text.length];
                out.duplicate().flip().get(got);
                assertTrue(Arrays.equals(expected, Digest.sha256().digest(got)));
              }
            });
    assertTrue(runs > 100);
  }

  @Test
  void compressedErofsInodesFailOnlyWithFormatErrors() throws Exception {
    Requirements.requireTool("mkfs.erofs");
    Path tree = Files.createDirectories(tmp.resolve("tree"));
    StringBuilder sb = new StringBuilder();
    for (int i = 0; sb.length() < 60_000; i++) {
      sb.append("line ").append(i % 977).append('\n');
    }
    Files.writeString(tree.resolve("a.txt"), sb);
    Files.writeString(tree.resolve("b.txt"), sb.substring(0, 9000));
    byte[] random = new byte[9000];
    new Random(1).nextBytes(random);
    Files.write(tree.resolve("r.bin"), random);
    List<byte[]> seeds = new ArrayList<>();
    for (String[] opts :
        new String[][] {
          {"-zlz4"}, {"-zlz4hc", "-C16384", "-Eztailpacking"}, {"-zlz4", "-Elegacy-compress"}
        }) {
      Path img = tmp.resolve("img" + seeds.size());
      List<String> cmd = new ArrayList<>(List.of("mkfs.erofs", "--quiet", "-T0"));
      cmd.addAll(List.of(opts));
      cmd.addAll(List.of(img.toString(), tree.toString()));
      Requirements.run(cmd.toArray(String[]::new));
      seeds.add(Files.readAllBytes(img));
    }
    long runs =
        Fuzzer.fuzz(
            "erofs-compressed",
            seeds,
            Set.of(IOException.class),
            1 << 20,
            input -> {
              ErofsReader reader = ErofsReader.open(ByteSource.of(input));
              reader.walk(
                  (path, inode) -> {
                    if (inode.type() == FileType.REGULAR) {
                      reader.forEachDataExtent(
                          inode, e -> assertTrue(e.length() >= 0 && e.offset() >= 0, e.toString()));
                    }
                  });
            });
    assertTrue(runs > 50);
  }
}

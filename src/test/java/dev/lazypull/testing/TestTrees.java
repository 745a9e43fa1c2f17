package dev.lazypull.testing;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/** Deterministic source trees for image tests, and md5 lists in `md5sum -c` format. */
public final class TestTrees {
  private TestTrees() {}

  /**
   * A tree with the shapes that matter for lazy reads: a file spanning several 1 MiB chunks, files
   * of odd sizes, a file of exactly one chunk, many small files, an empty file, deep nesting, a
   * symlink.
   */
  public static Path mixed(Path root, long seed) throws IOException {
    Random rnd = new Random(seed);
    Files.createDirectories(root);
    Files.writeString(root.resolve("hello.txt"), "hello from lazypull\n");
    write(root.resolve("big.bin"), (8 << 20) + 12345, rnd);
    write(root.resolve("one-chunk.bin"), 1 << 20, rnd);
    write(root.resolve("odd.bin"), 3 * 4096 + 17, rnd);
    Files.createFile(root.resolve("empty"));
    Path deep = root;
    for (int i = 0; i < 8; i++) {
      deep = deep.resolve("d" + i);
    }
    Files.createDirectories(deep);
    write(deep.resolve("deep.bin"), 70_000, rnd);
    Path many = Files.createDirectories(root.resolve("many"));
    for (int i = 0; i < 60; i++) {
      write(many.resolve("f" + i + ".txt"), rnd.nextInt(9000), rnd);
    }
    Files.createSymbolicLink(root.resolve("link-to-hello"), Path.of("hello.txt"));
    return root;
  }

  public static void write(Path file, long size, Random rnd) throws IOException {
    byte[] buf = new byte[1 << 16];
    try (OutputStream out = Files.newOutputStream(file)) {
      long left = size;
      while (left > 0) {
        rnd.nextBytes(buf);
        int n = (int) Math.min(buf.length, left);
        out.write(buf, 0, n);
        left -= n;
      }
    }
  }

  /** `md5sum -c` input for every regular file under root, paths relative to root. */
  public static Path md5List(Path root, Path out) throws IOException {
    List<String> lines = new ArrayList<>();
    try (Stream<Path> files = Files.walk(root)) {
      for (Path f : (Iterable<Path>) files.sorted()::iterator) {
        if (Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS)) {
          lines.add(md5(f) + "  " + root.relativize(f));
        }
      }
    }
    Files.write(out, lines, StandardCharsets.UTF_8);
    return out;
  }

  public static String md5(Path f) throws IOException {
    try {
      MessageDigest md = MessageDigest.getInstance("MD5");
      try (var in = Files.newInputStream(f)) {
        byte[] buf = new byte[1 << 16];
        int n;
        while ((n = in.read(buf)) > 0) {
          md.update(buf, 0, n);
        }
      }
      return HexFormat.of().formatHex(md.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}

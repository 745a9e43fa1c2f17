package dev.lazypull.prefetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lazypull.erofs.ByteSource;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Globs → byte ranges, checked against images made by mkfs.erofs: the ranges hold exactly the
 * files' bytes.
 */
class PathRangesTest {
  @TempDir Path tmp;

  private Path tree() throws Exception {
    Path t = Files.createDirectories(tmp.resolve("tree/sub"));
    Random rnd = new Random(3);
    TestTrees.write(t.resolve("a.bin"), 3 * 4096 + 100, rnd);
    TestTrees.write(t.resolve("b.bin"), 70_000, rnd);
    TestTrees.write(t.resolve("skip.txt"), 5000, rnd);
    TestTrees.write(tmp.resolve("tree/top.bin"), 9000, rnd);
    return tmp.resolve("tree");
  }

  private static byte[] gather(byte[] device, List<long[]> ranges) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (long[] r : ranges) {
      out.write(device, (int) r[0], (int) r[1]);
    }
    return out.toByteArray();
  }

  @Test
  void chunkedFilesMapToTheirChunksInTheDataBlob() throws Exception {
    Requirements.requireTool("mkfs.erofs");
    Path tree = tree();
    Path boot = tmp.resolve("boot.erofs");
    Path blob = tmp.resolve("blob");
    Requirements.run(
        "mkfs.erofs",
        "--quiet",
        "-T0",
        "--chunksize=4096",
        "--blobdev=" + blob,
        boot.toString(),
        tree.toString());
    PathRanges.Result r =
        PathRanges.of(ByteSource.of(Files.readAllBytes(boot)), List.of("/sub/*.bin"));
    assertEquals(2, r.files());
    assertEquals(3 * 4096 + 100 + 70_000, r.bytes());
    ByteArrayOutputStream expected = new ByteArrayOutputStream();
    for (String f :
        List.of("sub/a.bin", "sub/b.bin")) { // directory order is bytewise: a.bin before b.bin
      expected.write(Files.readAllBytes(tree.resolve(f)));
    }
    assertArrayEquals(
        expected.toByteArray(), gather(Files.readAllBytes(blob), r.byDevice().get(1)));
  }

  @Test
  void flatFilesMapToBlocksOfTheBootstrap() throws Exception {
    Requirements.requireTool("mkfs.erofs");
    Path tree = tree();
    Path img = tmp.resolve("single.erofs");
    Requirements.run(
        "mkfs.erofs", "--quiet", "-T0", "-Enoinline_data", img.toString(), tree.toString());
    byte[] image = Files.readAllBytes(img);
    PathRanges.Result r = PathRanges.of(ByteSource.of(image), List.of("/top.bin"));
    assertEquals(1, r.files());
    assertArrayEquals(
        Files.readAllBytes(tree.resolve("top.bin")), gather(image, r.byDevice().get(0)));
    assertEquals(0, PathRanges.of(ByteSource.of(image), List.of("/nope/**")).files());
  }
}

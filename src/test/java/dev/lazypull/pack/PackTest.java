package dev.lazypull.pack;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.app.BlobByteSource;
import dev.lazypull.blob.ImageSource;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.cli.Main;
import dev.lazypull.erofs.ErofsReader;
import dev.lazypull.erofs.ImageSummary;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TarBytes;
import dev.lazypull.testing.TestImages;
import dev.lazypull.testing.TestTrees;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `lazypull pack`: reproducibility, dedup, digest tables, blob caps, tar input, and its refusals.
 */
class PackTest {
  @TempDir Path tmp;

  private Path tree() throws Exception {
    Path t = TestTrees.mixed(tmp.resolve("tree"), 42);
    Files.copy(
        t.resolve("big.bin"), t.resolve("copy-of-big.bin")); // identical chunks to deduplicate
    return t;
  }

  private String pack(Path src, String tag, String... extra) throws Exception {
    String[] args = new String[4 + extra.length];
    args[0] = "pack";
    args[1] = src.toString();
    System.arraycopy(extra, 0, args, 2, extra.length);
    args[2 + extra.length] = "--output";
    args[3 + extra.length] = "oci:" + tmp.resolve("layout") + ":" + tag;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    PrintStream old = System.out;
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    try {
      assertEquals(0, Main.run(args));
    } finally {
      System.setOut(old);
    }
    return out.toString(StandardCharsets.UTF_8).trim();
  }

  private LazyImage image(String tag) throws Exception {
    return ImageSources.localOnly().open("oci:" + tmp.resolve("layout") + ":" + tag).resolve();
  }

  @Test
  void sameInputAndOptionsGiveTheSameDigestsAtAnyThreadCount() throws Exception {
    Path t = tree();
    String a = pack(t, "a", "--threads", "1");
    String b = pack(t, "b", "--threads", "4");
    assertTrue(a.startsWith("sha256:"), a);
    assertEquals(a, b, "manifest digest independent of thread count");
    String c = pack(t, "c", "--mtime", "2024-01-01T00:00:00Z");
    String d = pack(t, "d", "--mtime", "1704067200");
    assertEquals(c, d);
    assertNotEquals(a, c);
    ImageSource s = ImageSources.localOnly().open("oci:" + tmp.resolve("layout") + ":c");
    ErofsReader r = ErofsReader.open(new BlobByteSource(s.blobs(), image("c").bootstrap()));
    r.walk(
        (p, i) -> {
          assertEquals(1704067200L, i.record().mtime());
          assertFalse(i.record().extended(), "one fixed mtime keeps every inode compact");
        });
  }

  @Test
  void identicalChunksAreStoredOnceAndEveryChunkDigestVerifies() throws Exception {
    pack(tree(), "v", "--compression", "none"); // raw: the table's offsets index the blob itself
    LazyImage img = image("v");
    ImageSource s = ImageSources.localOnly().open("oci:" + tmp.resolve("layout") + ":v");
    ImageSummary sum =
        ImageSummary.of(ErofsReader.open(new BlobByteSource(s.blobs(), img.bootstrap())));
    assertTrue(sum.dedupRatio() > 1.0, "big.bin and its copy share chunks: " + sum.dedupRatio());
    assertEquals(1, img.blobs().size());
    Descriptor blob = img.blobs().get(0);
    ChunkDigestTable table =
        ChunkDigestTable.decode(
            s.readRange(img.chunkTable(0), 0, (int) img.chunkTable(0).size()), blob.size());
    assertEquals(sum.uniqueChunks(), table.size());
    byte[] data = s.readRange(blob, 0, (int) blob.size());
    for (int i = 0; i < table.size(); i++) {
      assertTrue(table.verify(i, data, (int) table.offset(i), table.length(i)), "chunk " + i);
    }
    String json =
        capture(() -> Main.run("inspect", "--json", "oci:" + tmp.resolve("layout") + ":v"));
    JsonNode fs = Json.MAPPER.readTree(json).path("filesystem");
    assertEquals(sum.regularFiles(), fs.path("regularFiles").asLong());
    assertEquals(sum.uniqueChunks(), fs.path("uniqueChunks").asLong());
    assertTrue(fs.path("dedupRatio").asDouble() > 1.0, json);
    data[(int) table.offset(1) + 5] ^= 1;
    assertFalse(
        table.verify(1, data, (int) table.offset(1), table.length(1)), "a flipped byte is caught");
  }

  private static String capture(Callable<Integer> run) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    PrintStream old = System.out;
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    try {
      assertEquals(0, run.call());
    } finally {
      System.setOut(old);
    }
    return out.toString(StandardCharsets.UTF_8);
  }

  @Test
  void blobSizeCapStartsNewBlobs() throws Exception {
    pack(tree(), "cap", "--blob-size-cap", "2M");
    LazyImage img = image("cap");
    assertTrue(
        img.blobs().size() >= 5,
        "about 12 MiB of unique data in 2 MiB blobs: " + img.blobs().size());
    for (Descriptor b : img.blobs()) {
      assertTrue(b.size() <= 2 << 20, b.toString());
    }
    assertEquals(img.blobs().size(), img.chunkTables().size());
  }

  @Test
  void aTarOfTheTreeGivesTheSameDataBlobAsTheTree() throws Exception {
    Requirements.requireTool("tar");
    Path t = tree();
    pack(t, "dir");
    Path tar = tmp.resolve("tree.tar.gz");
    Requirements.run(
        "bash",
        "-c",
        "tar --sort=name --format=pax -C '" + t + "' -cf - . | gzip -n > '" + tar + "'");
    pack(tar, "tar");
    assertEquals(image("dir").blobs(), image("tar").blobs(), "same chunks in the same order");
  }

  @Test
  void refusesBadTargetsSourcesAndTarsWithClearErrorsAndPublishesNothing() throws Exception {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream old = System.err;
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      assertEquals(
          2, Main.run("pack", tmp.toString(), "--push", "oci:" + tmp.resolve("bad") + ":p"));
      Path escape = tmp.resolve("escape.tar");
      Files.write(
          escape, new TarBytes().entry("ok", '0', "x").entry("../../etc/passwd", '0', "x").end());
      assertEquals(
          1, Main.run("pack", escape.toString(), "--output", "oci:" + tmp.resolve("bad") + ":x"));
      Path loop = tmp.resolve("loop.tar");
      Files.write(
          loop, new TarBytes().symlink("a", "b").symlink("b", "a").entry("a/x", '0', "x").end());
      assertEquals(
          1, Main.run("pack", loop.toString(), "--output", "oci:" + tmp.resolve("bad") + ":y"));
      // Nothing listens on port 1: a clear error naming the registry, and nothing written.
      assertEquals(
          1,
          Main.run(
              "convert",
              "127.0.0.1:1/app:1",
              "oci:" + tmp.resolve("bad") + ":z",
              "--scratch-dir",
              tmp.resolve("scratch").toString()));
    } finally {
      System.setErr(old);
    }
    String msg = err.toString(StandardCharsets.UTF_8);
    assertTrue(msg.contains("--push wants a registry reference"), msg);
    assertTrue(msg.contains("contains '..'"), msg);
    assertTrue(msg.contains("symlink loop"), msg);
    assertTrue(msg.contains("registry 127.0.0.1:1") || msg.contains("127.0.0.1:1"), msg);
    String index = Files.readString(tmp.resolve("bad/index.json"));
    assertFalse(index.contains("\"x\"") || index.contains("\"y\""), "nothing tagged: " + index);
    try (var files = Files.list(tmp.resolve("bad/blobs/sha256"))) {
      assertTrue(
          files.noneMatch(p -> p.getFileName().toString().startsWith(".incoming")),
          "scratch removed");
    }
  }

  @Test
  void convertedImagesAreReproducible() throws Exception {
    Requirements.requireTool("tar");
    Path t = tree();
    Path layer = tmp.resolve("layer.tar.gz");
    Requirements.run(
        "bash",
        "-c",
        "tar --sort=name --format=pax -C '" + t + "' -cf - . | gzip -n > '" + layer + "'");
    TestImages.write(
        tmp.resolve("src"),
        "v1",
        List.of(new TestImages.Layer(layer, layer, MediaTypes.OCI_LAYER_TAR_GZIP)));
    assertEquals(
        0, Main.run("convert", "oci:" + tmp.resolve("src") + ":v1", "oci:" + tmp.resolve("o1")));
    assertEquals(
        0,
        Main.run(
            "convert",
            "--threads",
            "1",
            "oci:" + tmp.resolve("src") + ":v1",
            "oci:" + tmp.resolve("o2")));
    assertArrayEquals(
        Files.readAllBytes(tmp.resolve("o1/index.json")),
        Files.readAllBytes(tmp.resolve("o2/index.json")));
  }
}

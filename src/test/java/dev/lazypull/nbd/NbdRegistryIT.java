package dev.lazypull.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.LazyImage;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.LazypullProcess;
import dev.lazypull.testing.NbdFuseMount;
import dev.lazypull.testing.RegistryImages;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code lazypull nbd} of images in Debian's real {@code docker-registry} on loopback, mounted by
 * the host kernel (nbdfuse + loop, EROFS flatten mode): a partial read makes the registry serve a
 * small part of the image (counted from its access log), every file then matches its source, and a
 * data blob altered in the registry's storage gives readers an I/O error — never wrong bytes —
 * because the export verifies every chunk against the image's digest table.
 */
class NbdRegistryIT {
  private static Path work;
  private static Path jar;
  private static DockerRegistryFixture reg;
  private static Path toml;

  @BeforeAll
  static void start() throws Exception {
    NbdFuseMount.require();
    jar = VmHarness.jar();
    work = VmHarness.workDir("nbd-registry");
    reg = DockerRegistryFixture.builder(work.resolve("registry")).start();
    toml = RegistryImages.config(work, null);
  }

  @AfterAll
  static void stop() {
    if (reg != null) {
      reg.close();
    }
  }

  /** Packs a tree and pushes it; returns the image as the registry serves it. */
  private static LazyImage push(Path tree, String ref) throws Exception {
    return RegistryImages.packAndPush(tree, ref, toml, work.resolve("scratch"));
  }

  private static LazypullProcess serve(String ref, Path socket, Path cache) throws Exception {
    LazypullProcess p =
        LazypullProcess.start(
            jar,
            work.resolve("lazypull-" + socket.getFileName()),
            "nbd",
            ref,
            "--plain-http",
            "--config",
            toml.toString(),
            "--listen",
            "unix:" + socket,
            "--cache-dir",
            cache.toString());
    p.awaitLine("serving", 60);
    return p;
  }

  @Test
  void theKernelMountsARegistryExportLazilyAndEveryFileMatches() throws Exception {
    Path tree = TestTrees.mixed(work.resolve("tree"), 21);
    Path md5 = TestTrees.md5List(tree, work.resolve("tree.md5"));
    String ref = reg.host() + "/nbd/app:v1";
    LazyImage img = push(tree, ref);
    long total = RegistryImages.imageBytes(img);
    long tables = img.chunkTables().stream().mapToLong(Descriptor::size).sum();
    Path socket = work.resolve("app.sock");
    Path cache = work.resolve("cache-app");

    long before = reg.blobBytesServed();
    Map<String, Long> partial;
    try (LazypullProcess p = serve(ref, socket, cache)) {
      String out = NbdFuseMount.run(work, socket, "partial", "cat hello.txt");
      assertTrue(out.contains("hello from lazypull"), out);
      partial = p.stop();
    }
    long served = reg.blobBytesServed() - before;
    System.out.printf(
        "nbd from registry, partial read: registry served %d of %d image bytes (%.1f%%), "
            + "fetched %d%n",
        served, total, 100.0 * served / total, partial.get("bytesFetched"));
    assertTrue(
        served > 0 && served < total / 2,
        "mount + one small file: a part of the image only: " + served);
    assertTrue(
        served <= partial.get("bytesFetched") + tables,
        "the registry served what was fetched: " + partial);
    assertTrue(
        partial.get("chunksVerified") > 0, "chunks verified against the digest tables: " + partial);

    before = reg.blobBytesServed();
    try (LazypullProcess p = serve(ref, socket, cache)) {
      NbdFuseMount.run(work, socket, "full", "md5sum --quiet -c '" + md5 + "'");
      Map<String, Long> full = p.stop();
      assertEquals(0, full.get("readsFailed"));
      assertEquals(0, full.get("integrityFailures"));
    }
    long rest = reg.blobBytesServed() - before;
    assertTrue(
        rest <= total - partial.get("bytesFetched") + tables + 4 * 4096,
        "what the first run cached is not served again: " + rest);
  }

  @Test
  void aBlobAlteredInTheRegistryIsAnIoErrorNeverWrongBytes() throws Exception {
    Path tree = TestTrees.mixed(work.resolve("tree-bad"), 22);
    Path md5 = TestTrees.md5List(tree, work.resolve("tree-bad.md5"));
    String ref = reg.host() + "/nbd/bad:v1";
    LazyImage img = push(tree, ref);
    Path data = RegistryImages.blobData(reg, img.blobs().get(0).digest());
    byte[] bytes = Files.readAllBytes(data);
    bytes[bytes.length / 4] ^= 0x55; // inside big.bin, the first file stored
    Files.write(data, bytes);

    Path socket = work.resolve("bad.sock");
    try (LazypullProcess p = serve(ref, socket, work.resolve("cache-bad"))) {
      String out = NbdFuseMount.run(work, socket, "bad", "md5sum -c '" + md5 + "' 2>&1; true");
      Map<String, Long> stats = p.stop();
      assertTrue(
          out.contains("big.bin: FAILED open or read"),
          "an I/O error for the altered file:\n" + out);
      assertTrue(
          out.lines().noneMatch(l -> l.endsWith(": FAILED")),
          "no file read with wrong bytes:\n" + out);
      assertTrue(
          out.contains("hello.txt: OK") && out.contains("one-chunk.bin: OK"),
          "the rest reads:\n" + out);
      assertTrue(stats.get("integrityFailures") >= 1, stats.toString());
    }
  }
}

package dev.lazypull.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.LazyImage;
import dev.lazypull.testing.CliRun;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.LazypullProcess;
import dev.lazypull.testing.RegistryImages;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code lazypull prefetch --standalone} against Debian's real {@code docker-registry}: {@code
 * --path} fetches the bootstrap and the matching files only, {@code --all} (also chosen when no
 * daemon socket exists) the rest, after which {@code lazypull nbd} of the image serves every byte
 * from the cache without the registry serving a single blob byte; a running export's locked cache,
 * unknown paths and images, and a blob altered in the registry give clear errors and a non-zero
 * exit.
 */
class StandalonePrefetchIT {
  private static Path work;
  private static DockerRegistryFixture reg;
  private static Path toml;
  private static String ref;
  private static LazyImage img;
  private static Path tree;

  @BeforeAll
  static void start() throws Exception {
    Requirements.requireTool("nbdcopy");
    work = VmHarness.workDir("standalone-prefetch");
    reg = DockerRegistryFixture.builder(work.resolve("registry")).start();
    toml = RegistryImages.config(work, "[nbd]\nlog_level = \"warn\"\n");
    tree = TestTrees.mixed(work.resolve("tree"), 31);
    ref = reg.host() + "/prefetch/app:v1";
    img = RegistryImages.packAndPush(tree, ref, toml, work.resolve("scratch"));
  }

  @AfterAll
  static void stop() {
    if (reg != null) {
      reg.close();
    }
  }

  private static CliRun.Result prefetch(String image, Path cache, String... extra) {
    String[] args = new String[8 + extra.length];
    System.arraycopy(
        new String[] {
          "prefetch",
          image,
          "--plain-http",
          "--config",
          toml.toString(),
          "--cache-dir",
          cache.toString(),
          "--standalone"
        },
        0,
        args,
        0,
        8);
    System.arraycopy(extra, 0, args, 8, extra.length);
    return CliRun.run(args);
  }

  @Test
  void pathsThenAllFillTheNbdCacheAndTheExportFetchesNothing() throws Exception {
    Path cache = work.resolve("cache");
    long total = RegistryImages.imageBytes(img);
    long tables = img.chunkTables().stream().mapToLong(Descriptor::size).sum();

    long before = reg.blobBytesServed();
    CliRun.Result paths =
        prefetch(ref, cache, "--path", "/one-chunk.bin", "--path", "/many/f1*.txt");
    assertEquals(0, paths.code(), paths.err());
    assertTrue(
        paths.out().contains("matched 12 files"), paths.out()); // one-chunk.bin, f1 and f10..f19
    long served = reg.blobBytesServed() - before;
    System.out.printf("prefetch --path: registry served %d of %d image bytes%n", served, total);
    assertTrue(
        served >= (1 << 20) && served < total / 2,
        "the matched files (and their chunks) only: " + served);

    // No daemon socket: the standalone mode is chosen, with a note.
    before = reg.blobBytesServed();
    CliRun.Result all =
        CliRun.run(
            "prefetch",
            ref,
            "--all",
            "--plain-http",
            "--config",
            toml.toString(),
            "--cache-dir",
            cache.toString(),
            "--socket",
            work.resolve("no-daemon.sock").toString());
    assertEquals(0, all.code(), all.err());
    assertTrue(all.err().contains("no daemon socket"), all.err());
    assertTrue(all.out().contains("(100%)") && all.out().contains("chunks verified"), all.out());
    long rest = reg.blobBytesServed() - before;
    assertTrue(
        rest > 0 && rest <= total - served + tables + (1 << 20),
        "what --path cached is not fetched again: " + rest);

    // The export of the prefetched image: every byte from the cache, nothing from the registry's
    // blobs.
    Path socket = work.resolve("export.sock");
    before = reg.blobBytesServed();
    Map<String, Long> stats;
    try (LazypullProcess p =
        LazypullProcess.start(
            VmHarness.jar(),
            work.resolve("nbd"),
            "nbd",
            ref,
            "--plain-http",
            "--config",
            toml.toString(),
            "--listen",
            "unix:" + socket,
            "--cache-dir",
            cache.toString())) {
      p.awaitLine("serving", 60);
      Requirements.run(
          "nbdcopy", "nbd+unix:///?socket=" + socket, work.resolve("export.img").toString());

      // While the export runs, a prefetch of the same image shares its cache files: nothing left to
      // fetch.
      long beforeShared = reg.blobBytesServed();
      CliRun.Result shared = prefetch(ref, cache);
      assertEquals(0, shared.code(), shared.err());
      assertTrue(shared.out().contains("(100%)"), shared.out());
      assertEquals(0, reg.blobBytesServed() - beforeShared, "the shared cache had it all");
      stats = p.stop();
    }
    assertEquals(0, stats.get("bytesFetched"), "the export fetched nothing: " + stats);
    assertEquals(0, stats.get("readsFailed"));
    assertEquals(
        0,
        reg.blobBytesServed() - before,
        "no blob (not even a digest table) read from the registry");
    assertTrue(
        Files.size(work.resolve("export.img")) > total, "the whole flattened device was read");
  }

  @Test
  void badPathsImagesAndAlteredBlobsFailClearly() throws Exception {
    Path cache = work.resolve("cache-bad");
    CliRun.Result noMatch = prefetch(ref, cache, "--path", "/no/such/*");
    assertEquals(1, noMatch.code());
    assertTrue(
        noMatch.err().contains("no file of") && noMatch.err().contains("/no/such/*"),
        noMatch.err());

    CliRun.Result noImage = prefetch(reg.host() + "/prefetch/nope:v1", cache);
    assertEquals(1, noImage.code());
    assertTrue(
        noImage.err().contains("prefetch/nope") && noImage.err().contains("404"), noImage.err());

    assertEquals(2, prefetch(ref, cache, "--all", "--path", "/x").code());

    Path data = RegistryImages.blobData(reg, img.blobs().get(0).digest());
    byte[] good = Files.readAllBytes(data);
    byte[] bad = good.clone();
    bad[bad.length / 2] ^= 1;
    Files.write(data, bad);
    try {
      CliRun.Result altered = prefetch(ref, cache, "--all");
      assertEquals(1, altered.code());
      assertTrue(altered.err().contains("fail their chunk digest"), altered.err());
      assertTrue(!altered.out().contains("(100%)"), altered.out());
    } finally {
      Files.write(data, good);
    }
  }

  private static Map<String, Long> copyExport(String image, Path cache, Path out, String... extra)
      throws Exception {
    Path socket = work.resolve("budget-export.sock");
    String[] args = {
      "nbd",
      image,
      "--plain-http",
      "--config",
      toml.toString(),
      "--listen",
      "unix:" + socket,
      "--cache-dir",
      cache.toString()
    };
    String[] all = Arrays.copyOf(args, args.length + extra.length);
    System.arraycopy(extra, 0, all, args.length, extra.length);
    try (LazypullProcess p =
        LazypullProcess.start(VmHarness.jar(), work.resolve("nbd-budget"), all)) {
      p.awaitLine("serving", 60);
      Requirements.run("nbdcopy", "nbd+unix:///?socket=" + socket, out.toString());
      return p.stop();
    }
  }

  private static boolean cachedAny(Path cache, LazyImage image) {
    return image.blobs().stream()
        .anyMatch(b -> Files.exists(cache.resolve("blobs/sha256").resolve(b.digest().hex())));
  }

  @Test
  void aCacheBudgetRemovesUnusedImagesLeastRecentlyUsedFirstAndExportsKeepServing()
      throws Exception {
    Path cache = work.resolve("cache-budget");
    String ref2 = reg.host() + "/prefetch/other:v1";
    LazyImage img2 =
        RegistryImages.packAndPush(
            TestTrees.mixed(work.resolve("tree2"), 32), ref2, toml, work.resolve("scratch2"));
    assertEquals(0, prefetch(ref, cache, "--all").code());
    Path first = work.resolve("budget-1a.img");
    assertEquals(0, copyExport(ref, cache, first).get("bytesFetched"), "image 1 fully cached");
    assertEquals(0, prefetch(ref2, cache, "--all").code());
    assertTrue(cachedAny(cache, img) && cachedAny(cache, img2));

    // While image 2 is exported, collect to a budget nothing fits: image 1 goes, image 2 (in use)
    // stays.
    Path socket = work.resolve("budget-2.sock");
    try (LazypullProcess p =
        LazypullProcess.start(
            VmHarness.jar(),
            work.resolve("nbd-budget2"),
            "nbd",
            ref2,
            "--plain-http",
            "--config",
            toml.toString(),
            "--listen",
            "unix:" + socket,
            "--cache-dir",
            cache.toString())) {
      p.awaitLine("serving", 60);
      CliRun.Result gc =
          CliRun.run(
              "gc",
              "--nbd",
              "--cache-dir",
              cache.toString(),
              "--budget",
              "1",
              "--config",
              toml.toString());
      assertEquals(1, gc.code(), "still over budget: the rest is in use\n" + gc.out() + gc.err());
      assertTrue(gc.out().contains("in use"), gc.out());
      assertTrue(!cachedAny(cache, img), "image 1's blobs were removed: " + gc.out());
      assertTrue(
          img2.blobs().stream()
              .allMatch(b -> Files.exists(cache.resolve("blobs/sha256").resolve(b.digest().hex()))),
          "image 2's blobs are in use and stay");
      Requirements.run(
          "nbdcopy", "nbd+unix:///?socket=" + socket, work.resolve("budget-2.img").toString());
      Map<String, Long> stats = p.stop();
      assertEquals(
          0, stats.get("bytesFetched"), "the running export still serves from its cache: " + stats);
      assertEquals(0, stats.get("readsFailed"));
    }

    // An export with a budget collects at start: image 2 (unused now) goes; image 1 is fetched
    // again, same bytes.
    long before = reg.blobBytesServed();
    Path again = work.resolve("budget-1b.img");
    Map<String, Long> stats = copyExport(ref, cache, again, "--cache-budget", "1");
    assertTrue(
        stats.get("bytesFetched") > 0 && reg.blobBytesServed() > before, "refetched: " + stats);
    assertEquals(0, stats.get("readsFailed"));
    assertTrue(!cachedAny(cache, img2), "image 2 was collected when the export started");
    assertEquals(-1L, Files.mismatch(first, again), "the refetched export has the same bytes");
  }
}

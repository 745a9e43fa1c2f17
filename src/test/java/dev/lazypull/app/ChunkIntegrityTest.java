package dev.lazypull.app;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageRegistrar;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.cli.Main;
import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.fetch.FetchStats;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.LazyImage;
import dev.lazypull.sys.Posix;
import dev.lazypull.testing.DaemonHarness;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.FakeKernel;
import dev.lazypull.testing.FakeKernel.FakeObject;
import dev.lazypull.testing.FakeKernel.Outcome;
import dev.lazypull.testing.TestTrees;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Images packed with chunk digest tables: a tampered chunk is detected and never reaches the cache
 * file.
 */
class ChunkIntegrityTest {
  /**
   * 1 MiB chunks (as the daemon's default) and no read-ahead: fetches are exactly what READs ask
   * for.
   */
  private static final FetchSettings MIB_CHUNKS_NO_READ_AHEAD =
      new FetchSettings(2, 1 << 20, 4 << 20, 0, Duration.ofSeconds(10), 1 << 20);

  @TempDir Path tmp;

  @Test
  void chunksFollowTheTableSoSequentialReadsFetchEachByteOnce() throws Exception {
    // Files of odd sizes: their tails make digest-table entries straddle every fixed 1 MiB
    // boundary.
    Path tree = Files.createDirectories(tmp.resolve("tree"));
    Random rnd = new Random(4);
    for (int i = 0; i < 6; i++) {
      TestTrees.write(tree.resolve("f" + i), (1L << 20) + 4096 * (i + 1) + 17, rnd);
    }
    String ref = "oci:" + tmp.resolve("layout") + ":odd";
    assertEquals(0, Main.run("pack", tree.toString(), "--output", ref, "--compression", "none"));
    Catalog catalog = Catalog.load(tmp.resolve("state"));
    ImageRecord image =
        new ImageRegistrar(catalog, ImageSources.localOnly()).register(ref, "odd", null, false);
    Descriptor blob = image.blobs().get(0);
    try (DaemonHarness h =
        DaemonHarness.in(tmp).config(c -> c.fetch(MIB_CHUNKS_NO_READ_AHEAD)).start()) {
      FakeKernel kernel = h.kernel;
      FetchStats stats = h.fetchStats();
      FakeObject o = kernel.open("erofs,odd", blob.digest().hex());
      o.copen.get(5, TimeUnit.SECONDS);
      for (long off = 0;
          off < blob.size();
          off += 128 << 10) { // the kernel's sequential 128 KiB READs
        assertEquals(
            Outcome.DATA,
            kernel.read(o, off, Math.min(128 << 10, blob.size() - off)).get(10, TimeUnit.SECONDS));
      }
      assertEquals(blob.size(), stats.bytesFetched.sum(), "every byte fetched exactly once");
      assertEquals(
          12,
          stats.chunksVerified.sum(),
          "each of the 12 table entries (6 files: a 1 MiB chunk and a tail) verified once");
      assertArrayEquals(
          Files.readAllBytes(tmp.resolve("layout/blobs/sha256/" + blob.digest().hex())),
          Arrays.copyOf(Files.readAllBytes(o.file), (int) blob.size()));
    }
  }

  @Test
  void aTamperedChunkFailsItsReadAndTheRestIsServedVerified() throws Exception {
    Path tree = Files.createDirectories(tmp.resolve("tree"));
    TestTrees.write(tree.resolve("big.bin"), 5L << 20, new Random(9));
    String ref = "oci:" + tmp.resolve("layout") + ":v1";
    assertEquals(0, Main.run("pack", tree.toString(), "--output", ref, "--compression", "none"));
    Catalog catalog = Catalog.load(tmp.resolve("state"));
    ImageRecord image =
        new ImageRegistrar(catalog, ImageSources.localOnly()).register(ref, "img", null, false);
    assertEquals(1, image.chunkTables().size(), "pack writes a chunk digest table per data blob");
    Descriptor blob = image.blobs().get(0);
    Path blobFile = tmp.resolve("layout/blobs/sha256/" + blob.digest().hex());
    byte[] original = Files.readAllBytes(blobFile);
    long tamperAt = 2L << 20; // inside the third 1 MiB chunk
    try (RandomAccessFile f = new RandomAccessFile(blobFile.toFile(), "rw")) {
      f.seek(tamperAt + 12345);
      f.write(original[(int) tamperAt + 12345] ^ 0x40);
    }

    try (DaemonHarness h =
        DaemonHarness.in(tmp).config(c -> c.fetch(MIB_CHUNKS_NO_READ_AHEAD)).start()) {
      FakeKernel kernel = h.kernel;
      FetchStats stats = h.fetchStats();
      FakeObject o = kernel.open("erofs,img", blob.digest().hex());
      assertEquals(blob.size(), o.copen.get(5, TimeUnit.SECONDS));
      ExpectedLogs.severe(
          "integrity: blob " + blob.digest() + " bytes " + tamperAt + "+" + (1 << 20));
      ExpectedLogs.warning("READ " + tamperAt + "+4096 failed: ");
      assertEquals(
          Outcome.EIO, kernel.read(o, tamperAt, 4096).get(10, TimeUnit.SECONDS), "tampered chunk");
      assertEquals(1, stats.integrityMismatchesOrigin.sum());
      long data = Posix.lseek(o.anonFd, tamperAt, Posix.SEEK_DATA);
      assertTrue(
          data == -1 || data >= tamperAt + (1 << 20),
          "no unverified byte was written (data at " + data + ")");
      assertEquals(
          Outcome.DATA,
          kernel.read(o, 0, 2L << 20).get(10, TimeUnit.SECONDS),
          "intact chunks serve");
      assertArrayEquals(
          Arrays.copyOf(original, 2 << 20), Arrays.copyOf(Files.readAllBytes(o.file), 2 << 20));
      assertTrue(stats.chunksVerified.sum() >= 2);
      // the origin repaired (e.g. re-pushed): the same chunk now verifies and is served
      Files.write(blobFile, original);
      assertEquals(Outcome.DATA, kernel.read(o, tamperAt, 4096).get(10, TimeUnit.SECONDS));
      assertArrayEquals(
          Arrays.copyOfRange(original, (int) tamperAt, (int) tamperAt + (1 << 20)),
          Arrays.copyOfRange(
              Files.readAllBytes(o.file), (int) tamperAt, (int) tamperAt + (1 << 20)));
    }
  }

  @Test
  void compressedChunksAreFetchedAsStoredDecompressedVerifiedAndATamperedFrameFails()
      throws Exception {
    Path tree = Files.createDirectories(tmp.resolve("tree"));
    byte[] text =
        "lazy pull of compressed chunks\n".repeat(200_000).getBytes(StandardCharsets.UTF_8);
    Files.write(tree.resolve("text.txt"), text); // compresses well: the stored blob is far smaller
    String ref = "oci:" + tmp.resolve("layout") + ":z";
    assertEquals(0, Main.run("pack", tree.toString(), "--output", ref)); // zstd chunks by default
    Catalog catalog = Catalog.load(tmp.resolve("state"));
    ImageRecord image =
        new ImageRegistrar(catalog, ImageSources.localOnly()).register(ref, "z", null, false);
    Descriptor blob = image.blobs().get(0);
    long device = LazyImage.deviceSize(blob);
    assertTrue(
        LazyImage.isCompressed(blob) && blob.size() * 10 < device,
        "stored " + blob.size() + " of a " + device + "-byte device");
    Path blobFile = tmp.resolve("layout/blobs/sha256/" + blob.digest().hex());
    try (DaemonHarness h =
        DaemonHarness.in(tmp).config(c -> c.fetch(MIB_CHUNKS_NO_READ_AHEAD)).start()) {
      FakeKernel kernel = h.kernel;
      FetchStats stats = h.fetchStats();
      FakeObject o = kernel.open("erofs,z", blob.digest().hex());
      assertEquals(
          device, o.copen.get(5, TimeUnit.SECONDS), "the cache file is the device, not the blob");
      assertEquals(Outcome.DATA, kernel.read(o, 0, device).get(10, TimeUnit.SECONDS));
      assertEquals(
          blob.size(), stats.bytesFetched.sum(), "every stored byte fetched once, none more");
      assertEquals(device, stats.bytesDecompressed.sum());
      byte[] cached = Files.readAllBytes(o.file);
      assertTrue(
          new String(cached, 0, (int) device, StandardCharsets.UTF_8)
              .contains("lazy pull of compressed chunks"),
          "the device holds the file's bytes");
    }
    // a flipped byte inside a frame: the chunk fails (EIO), nothing of it is cached
    byte[] stored = Files.readAllBytes(blobFile);
    stored[stored.length / 2] ^= 0x20;
    Files.write(blobFile, stored);
    Path fresh = Files.createDirectories(tmp.resolve("fresh"));
    Files.copy(
        tmp.resolve("state/catalog.json"),
        Files.createDirectories(fresh.resolve("state")).resolve("catalog.json"));
    try (DaemonHarness h =
        DaemonHarness.in(fresh).config(c -> c.fetch(MIB_CHUNKS_NO_READ_AHEAD)).start()) {
      ExpectedLogs.severe("integrity: blob " + blob.digest());
      ExpectedLogs.warning("fail their chunk digest");
      FakeObject o = h.kernel.open("erofs,z", blob.digest().hex());
      o.copen.get(5, TimeUnit.SECONDS);
      assertEquals(Outcome.EIO, h.kernel.read(o, 0, device).get(10, TimeUnit.SECONDS));
      assertTrue(h.fetchStats().integrityMismatchesOrigin.sum() >= 1);
      Descriptor tableDesc = image.chunkTable(1);
      ChunkDigestTable table =
          ChunkDigestTable.decode(
              Files.readAllBytes(tmp.resolve("layout/blobs/sha256/" + tableDesc.digest().hex())),
              blob);
      int bad = 0;
      while (table.compressedEnd(bad) <= stored.length / 2) {
        bad++;
      }
      long data = Posix.lseek(o.anonFd, table.offset(bad), Posix.SEEK_DATA);
      assertTrue(
          data == -1 || data >= table.offset(bad) + table.length(bad),
          "nothing of the failed chunk " + bad + " was written (data at " + data + ")");
    }
  }

  @Test
  void compressedAndRawImagesMountedInOneDomainEachServeTheirBytes() throws Exception {
    Path treeZ = Files.createDirectories(tmp.resolve("treeZ"));
    Path treeR = Files.createDirectories(tmp.resolve("treeR"));
    TestTrees.write(treeZ.resolve("z.bin"), (3L << 20) + 777, new Random(21));
    TestTrees.write(treeR.resolve("r.bin"), (2L << 20) + 333, new Random(22));
    String refZ = "oci:" + tmp.resolve("layout") + ":z";
    String refR = "oci:" + tmp.resolve("layout") + ":r";
    assertEquals(0, Main.run("pack", treeZ.toString(), "--output", refZ));
    assertEquals(0, Main.run("pack", treeR.toString(), "--output", refR, "--compression", "none"));
    Catalog catalog = Catalog.load(tmp.resolve("state"));
    ImageRegistrar registrar = new ImageRegistrar(catalog, ImageSources.localOnly());
    ImageRecord z = registrar.register(refZ, "z", "dom", false);
    ImageRecord r = registrar.register(refR, "r", "dom", false);
    assertTrue(LazyImage.isCompressed(z.blobs().get(0)));
    assertTrue(!LazyImage.isCompressed(r.blobs().get(0)));
    try (DaemonHarness h =
        DaemonHarness.in(tmp).config(c -> c.fetch(MIB_CHUNKS_NO_READ_AHEAD)).start()) {
      for (ImageRecord image : List.of(z, r)) {
        Descriptor blob = image.blobs().get(0);
        long device = LazyImage.deviceSize(blob);
        FakeObject o = h.kernel.open("erofs,dom", blob.digest().hex()); // one volume: the domain
        assertEquals(device, o.copen.get(5, TimeUnit.SECONDS));
        assertEquals(Outcome.DATA, h.kernel.read(o, 0, device).get(10, TimeUnit.SECONDS));
        byte[] file =
            Files.readAllBytes((image == z ? treeZ.resolve("z.bin") : treeR.resolve("r.bin")));
        assertArrayEquals(
            file,
            Arrays.copyOf(Files.readAllBytes(o.file), file.length),
            image.fsid() + ": the device holds the file's bytes");
      }
    }
  }
}

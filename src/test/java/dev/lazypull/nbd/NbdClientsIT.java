package dev.lazypull.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.cli.Main;
import dev.lazypull.image.Json;
import dev.lazypull.image.Manifest;
import dev.lazypull.oci.OciLayout;
import dev.lazypull.testing.LazypullProcess;
import dev.lazypull.testing.NbdFuseMount;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code lazypull nbd} (the packaged CLI) against real NBD clients and the real kernel on this
 * host: libnbd's nbdinfo/nbdcopy/nbdfuse and qemu-img agree with a flattened image built
 * independently here, the kernel mounts the export (EROFS flatten mode over nbdfuse's file, on a
 * loop device) with every file intact, a partial read fetches only part of the image, and a restart
 * serves from the persisted cache.
 *
 * <p>Images come from mkfs.erofs 1.5, whose device slots carry no mapped_blkaddr, so the export
 * computes the layout and serves a patched bootstrap head.
 */
class NbdClientsIT {
  private static Path work;
  private static Path jar;
  private static Path tree;
  private static Path md5;
  private static Path flat;
  private static long blobSize;
  private static String layout;

  @BeforeAll
  static void images() throws Exception {
    for (String tool : new String[] {"mkfs.erofs", "nbdinfo", "nbdcopy", "qemu-img"}) {
      Requirements.requireTool(tool);
    }
    jar = VmHarness.jar();
    work = VmHarness.workDir("nbd-clients");
    tree = TestTrees.mixed(work.resolve("tree"), 5);
    md5 = TestTrees.md5List(tree, work.resolve("tree.md5"));
    layout = "oci:" + work.resolve("layout");
    Path boot = work.resolve("multi.erofs");
    Path blob = work.resolve("multi.blob");
    Requirements.run(
        "mkfs.erofs",
        "--quiet",
        "-T0",
        "--chunksize=1048576",
        "--blobdev=" + blob,
        boot.toString(),
        tree.toString());
    assertEquals(
        0, Main.run("import", boot.toString(), blob.toString(), "--output", layout + ":multi"));
    Requirements.run(
        "mkfs.erofs", "--quiet", "-T0", work.resolve("single.erofs").toString(), tree.toString());
    assertEquals(
        0,
        Main.run(
            "import", work.resolve("single.erofs").toString(), "--output", layout + ":single"));
    blobSize = Files.size(blob);
    flat = work.resolve("flat.img");
    Files.write(flat, flatten(Files.readAllBytes(boot), Files.readAllBytes(blob)));
  }

  /**
   * The flattened device built here, independently of the export's code, from erofs-format.md §7:
   * the blob at the first 512 KiB boundary after the bootstrap, the slot's blocks and
   * mapped_blkaddr filled in, the superblock checksum (crc32c of block 0 from byte 1024, checksum
   * field zeroed) recomputed.
   */
  static byte[] flatten(byte[] boot, byte[] blob) {
    long bootBlocks = (boot.length + 4095) / 4096;
    long start = (bootBlocks + 127) / 128 * 128;
    long blobBlocks = (blob.length + 4095) / 4096;
    byte[] out = new byte[(int) ((start + blobBlocks) * 4096)];
    System.arraycopy(boot, 0, out, 0, boot.length);
    System.arraycopy(blob, 0, out, (int) (start * 4096), blob.length);
    ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
    int slot = (b.getShort(1024 + 88) & 0xffff) * 128;
    b.putInt(slot + 64, (int) blobBlocks).putInt(slot + 68, (int) start);
    if ((b.getInt(1024 + 8) & 1) != 0) {
      b.putInt(1024 + 4, 0);
      CRC32C crc = new CRC32C();
      crc.update(out, 1024, 4096 - 1024);
      b.putInt(1024 + 4, (int) ~crc.getValue());
    }
    return out;
  }

  private static LazypullProcess serve(String tag, Path socket, Path cache, String... extra)
      throws Exception {
    String[] args = new String[6 + extra.length];
    System.arraycopy(
        new String[] {
          "nbd", layout + ":" + tag, "--listen", "unix:" + socket, "--cache-dir", cache.toString()
        },
        0,
        args,
        0,
        6);
    System.arraycopy(extra, 0, args, 6, extra.length);
    LazypullProcess p =
        LazypullProcess.start(jar, work.resolve("lazypull-" + socket.getFileName()), args);
    p.awaitLine("serving", 60);
    return p;
  }

  private static String uri(Path socket) {
    return "nbd+unix:///?socket=" + socket;
  }

  @Test
  void nbdinfoNbdcopyAndQemuAgreeWithTheIndependentFlatImage() throws Exception {
    Path socket = work.resolve("multi.sock");
    Path cache = work.resolve("cache-clients");
    Map<String, Long> stats;
    try (LazypullProcess p = serve("multi", socket, cache, "--name", "multi")) {
      JsonNode info = Json.MAPPER.readTree(Requirements.run("nbdinfo", "--json", uri(socket)));
      JsonNode e = info.path("exports").get(0);
      assertEquals(Files.size(flat), e.path("export-size").asLong());
      assertTrue(e.path("is_read_only").asBoolean());
      assertTrue(e.path("can_multi_conn").asBoolean());
      assertTrue(e.path("can_flush").asBoolean());
      assertTrue(e.path("contexts").toString().contains("base:allocation"), e.toString());
      assertTrue(e.path("description").asText().contains("computed layout"), e.toString());
      JsonNode list =
          Json.MAPPER.readTree(Requirements.run("nbdinfo", "--list", "--json", uri(socket)));
      assertEquals("multi", list.path("exports").get(0).path("export-name").asText());
      String map = Requirements.run("nbdinfo", "--map", uri(socket));
      assertTrue(map.contains("hole,zero") && map.contains("data"), map);

      Path copy = work.resolve("copy.img");
      Requirements.run("nbdcopy", uri(socket), copy.toString());
      assertEquals(
          TestTrees.md5(flat),
          TestTrees.md5(copy),
          "nbdcopy of the export == independent flat image");
      Requirements.run(
          "qemu-img", "compare", "-f", "raw", "-F", "raw", flat.toString(), uri(socket));
      stats = p.stop();
    }
    assertEquals(0, stats.get("readsFailed"));
    assertTrue(
        stats.get("bytesFetched") <= blobSize + Files.size(work.resolve("multi.erofs")),
        "each byte fetched at most once: " + stats);

    try (LazypullProcess p =
        serve("multi", socket, cache)) { // restart: everything is in the cache already
      Requirements.run("nbdcopy", uri(socket), "null:");
      stats = p.stop();
    }
    assertEquals(0, stats.get("bytesFetched"), "readiness rebuilt from the cache files: " + stats);

    // The data blob's layer as import stored it (zstd chunks by default: its digest is not the
    // file's); the raw
    // export serves its device, the file's bytes.
    OciLayout oci = new OciLayout(work.resolve("layout"), "multi");
    String blobDigest =
        Json.parse(oci.readVerified(oci.findManifest()), Manifest.class, "manifest")
            .layers()
            .get(1)
            .digest()
            .toString();
    try (LazypullProcess p =
        serve("multi", socket, work.resolve("cache-raw"), "--blob", blobDigest)) {
      Requirements.run(
          "qemu-img",
          "compare",
          "-f",
          "raw",
          "-F",
          "raw",
          work.resolve("multi.blob").toString(),
          uri(socket));
      Path copy = work.resolve("raw.img");
      Requirements.run("nbdcopy", uri(socket), copy.toString());
      assertEquals(TestTrees.md5(work.resolve("multi.blob")), TestTrees.md5(copy));
      p.stop();
    }
  }

  private static String mountAndRun(Path socket, String name, String body) throws Exception {
    return NbdFuseMount.run(work, socket, name, body);
  }

  @Test
  void theKernelMountsTheExportLazilyAndEveryFileMatches() throws Exception {
    NbdFuseMount.require();
    // The independent flat image itself mounts: the builder above is right.
    Path direct = Files.createDirectories(work.resolve("mnt-direct"));
    Requirements.run(
        "bash",
        "-c",
        "mount -t erofs -o ro '"
            + flat
            + "' '"
            + direct
            + "' && cd '"
            + direct
            + "' && md5sum --quiet -c '"
            + md5
            + "'; rc=$?; cd /; umount '"
            + direct
            + "'; exit $rc");

    Path socket = work.resolve("mount.sock");
    Path cache = work.resolve("cache-mount");
    Map<String, Long> partial;
    try (LazypullProcess p = serve("multi", socket, cache)) {
      String out = mountAndRun(socket, "partial", "cat hello.txt");
      assertTrue(out.contains("hello from lazypull"), out);
      partial = p.stop();
    }
    long fetched = partial.get("bytesFetched");
    System.out.printf(
        "nbd partial read: %d of %d blob bytes fetched (%.1f%%)%n",
        fetched, blobSize, 100.0 * fetched / blobSize);
    assertTrue(
        fetched > 0 && fetched < blobSize / 2,
        "mount + one small file fetch a part only: " + partial);

    try (LazypullProcess p = serve("multi", socket, cache)) {
      String out =
          mountAndRun(
              socket,
              "full",
              "md5sum --quiet -c '" + md5 + "' && readlink link-to-hello" + " && stat -c %s empty");
      assertTrue(out.contains("hello.txt") && out.strip().endsWith("0"), out);
      Map<String, Long> full = p.stop();
      assertEquals(0, full.get("readsFailed"));
      assertTrue(
          full.get("bytesFetched") <= blobSize - fetched + 4096 * 4,
          "what the first run fetched is not fetched again: " + full);
    }

    try (LazypullProcess p =
        serve("single", work.resolve("single.sock"), work.resolve("cache-single"))) {
      mountAndRun(work.resolve("single.sock"), "single", "md5sum --quiet -c '" + md5 + "'");
      p.stop();
    }
  }
}

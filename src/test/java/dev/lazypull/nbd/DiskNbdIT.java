package dev.lazypull.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.cli.Main;
import dev.lazypull.image.Json;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.LazypullProcess;
import dev.lazypull.testing.NbdFuseMount;
import dev.lazypull.testing.RegistryImages;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.VmHarness;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Disk images with the packaged CLI and real clients: a raw ext4 disk ({@code mkfs.ext4}, files
 * written through a loop mount) imported with {@code import --disk} into a layout and pushed to a
 * real registry, then served by {@code lazypull nbd}: nbdcopy gives the disk byte for byte, nbdinfo
 * maps its empty chunks as holes, the kernel mounts it (nbdfuse + loop) with every file intact, and
 * a damaged chunk is an I/O error, never wrong bytes.
 */
class DiskNbdIT {
  static Path work;
  static Path jar;
  static Path diskFile;
  static Path sums;
  static String image;
  static DockerRegistryFixture reg;
  static Path toml;

  @BeforeAll
  static void disk() throws Exception {
    NbdFuseMount.require();
    for (String tool : new String[] {"mkfs.ext4", "nbdcopy", "nbdinfo", "qemu-io"}) {
      Requirements.requireTool(tool);
    }
    jar = VmHarness.jar();
    work = VmHarness.workDir("nbd-disk");
    diskFile = work.resolve("disk.img");
    sums = work.resolve("disk.md5");
    makeExt4(work, diskFile, 64, sums);
    Files.write(diskFile, new byte[1000], StandardOpenOption.APPEND); // not a whole 4 KiB block
    image = "oci:" + work.resolve("layout") + ":ext4";
    assertEquals(0, Main.run("import", "--disk", diskFile.toString(), "--output", image));
  }

  /**
   * An ext4 disk of {@code mib} MiB with three files (3 MB, 200 KB in a directory, a line), written
   * through a loop mount; their md5 sums go to {@code sums} (paths relative to the filesystem's
   * root).
   */
  static void makeExt4(Path work, Path file, int mib, Path sums) throws Exception {
    Path mnt = Files.createDirectories(work.resolve("mnt-build"));
    Requirements.run(
        "bash",
        "-c",
        String.join(
            "\n",
            "set -eu",
            "truncate -s " + mib + "M '" + file + "'",
            "mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=1,lazy_journal_init=1 '" + file + "'",
            "mount -o loop '" + file + "' '" + mnt + "'",
            "trap \"cd /; umount '" + mnt + "'\" EXIT",
            "head -c 3000000 /dev/urandom > '" + mnt + "/a'",
            "mkdir '" + mnt + "/d' && head -c 200000 /dev/urandom > '" + mnt + "/d/b'",
            "echo hello > '" + mnt + "/hello.txt'",
            "(cd '" + mnt + "' && md5sum a d/b hello.txt > '" + sums + "')"));
  }

  @AfterAll
  static void stop() {
    if (reg != null) {
      reg.close();
    }
  }

  static LazypullProcess serve(String ref, String name, String... extra) throws Exception {
    List<String> args =
        new ArrayList<>(
            List.of(
                "nbd",
                ref,
                "--listen",
                "unix:" + work.resolve(name + ".sock"),
                "--cache-dir",
                work.resolve("cache-" + name).toString()));
    args.addAll(Arrays.asList(extra));
    LazypullProcess p =
        LazypullProcess.start(jar, work.resolve("lazypull-" + name), args.toArray(new String[0]));
    p.awaitLine("serving", 60);
    return p;
  }

  static String uri(String name) {
    return "nbd+unix:///?socket=" + work.resolve(name + ".sock");
  }

  @Test
  void anImportedDiskIsServedByteForByteAndTheKernelMountsIt() throws Exception {
    try (LazypullProcess p = serve(image, "ro")) {
      JsonNode info = Json.MAPPER.readTree(Requirements.run("nbdinfo", "--json", uri("ro")));
      JsonNode e = info.path("exports").get(0);
      assertEquals(
          Files.size(diskFile), e.path("export-size").asLong(), "the disk's own size, not padded");
      assertTrue(e.path("is_read_only").asBoolean());
      String map = Requirements.run("nbdinfo", "--map", uri("ro"));
      assertTrue(
          WritableNbdIT.zeroBytes(map) > 32L << 20,
          "the empty chunks of the disk are holes:\n" + map);
      String out =
          NbdFuseMount.runWritable(
              work,
              work.resolve("ro.sock"),
              "ro",
              String.join(
                  "\n",
                  "mount -o loop,ro \"$DISK\" \"$MNT\"",
                  "(cd \"$MNT\" && md5sum -c '" + sums + "')",
                  "umount \"$MNT\""));
      assertTrue(
          out.contains("a: OK") && out.contains("d/b: OK") && out.contains("hello.txt: OK"), out);
      Path copy = work.resolve("ro-copy.img");
      Requirements.run("nbdcopy", uri("ro"), copy.toString());
      assertArrayEquals(
          Files.readAllBytes(diskFile), Files.readAllBytes(copy), "nbdcopy == the disk");
      Map<String, Long> stats = p.stop();
      assertEquals(0, stats.get("readsFailed"));
      assertTrue(stats.get("chunksVerified") > 0, stats.toString());
      assertTrue(
          stats.get("bytesFetched") < Files.size(diskFile) / 2,
          "empty chunks never fetched: " + stats);
    }
  }

  @Test
  void aDiskPushedToARegistryIsServedFromThere() throws Exception {
    reg = DockerRegistryFixture.builder(work.resolve("registry")).start();
    toml = RegistryImages.config(work, null);
    String ref = reg.host() + "/disks/ext4:v1";
    assertEquals(
        0,
        Main.run(
            "import",
            "--disk",
            diskFile.toString(),
            "--push",
            ref,
            "--plain-http",
            "--config",
            toml.toString()));
    try (LazypullProcess p = serve(ref, "reg", "--plain-http", "--config", toml.toString())) {
      Path copy = work.resolve("reg-copy.img");
      Requirements.run("nbdcopy", uri("reg"), copy.toString());
      assertArrayEquals(Files.readAllBytes(diskFile), Files.readAllBytes(copy));
      Map<String, Long> stats = p.stop();
      assertTrue(
          stats.get("bytesFetched") > 0 && stats.get("integrityFailures") == 0, stats.toString());
    }
  }

  @Test
  void aDamagedChunkIsAnIoErrorNeverWrongBytes() throws Exception {
    Path layout = work.resolve("layout-bad");
    Requirements.run("cp", "-r", work.resolve("layout").toString(), layout.toString());
    JsonNode index = Json.MAPPER.readTree(layout.resolve("index.json").toFile());
    String manifest = index.path("manifests").get(0).path("digest").asText().substring(7);
    JsonNode m = Json.MAPPER.readTree(layout.resolve("blobs/sha256/" + manifest).toFile());
    Path blob =
        layout.resolve(
            "blobs/sha256/" + m.path("layers").get(0).path("digest").asText().substring(7));
    byte[] stored = Files.readAllBytes(blob);
    stored[100] ^= 0x40; // inside the first chunk's frame (the superblock's MiB)
    Files.write(blob, stored);
    try (LazypullProcess p = serve("oci:" + layout + ":ext4", "bad")) {
      String out =
          Requirements.run(
              "bash",
              "-c",
              "qemu-io -r -f raw -c 'read 0 4096' -c 'read 4194304 4096' '"
                  + uri("bad")
                  + "' 2>&1; true");
      assertTrue(
          out.contains("Input/output error") && !out.contains("bytes at offset 0\n"),
          "the damaged chunk fails: " + out);
      assertTrue(
          out.contains("read 4096/4096 bytes at offset 4194304"), "another chunk reads: " + out);
      Map<String, Long> stats = p.stop();
      assertNotEquals(0L, stats.get("integrityFailures"), stats.toString());
    }
  }
}

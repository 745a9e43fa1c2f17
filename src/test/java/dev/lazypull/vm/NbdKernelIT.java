package dev.lazypull.vm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lazypull.cli.Main;
import dev.lazypull.image.Digest;
import dev.lazypull.image.LazyImage;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.RegistryImages;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The NBD export on a real kernel block device: Debian's 6.12 kernel under QEMU (nbd.ko, EROFS
 * flatten mode), {@code lazypull nbd --device /dev/nbdN} inside it, and {@code mount -t erofs
 * /dev/nbdN}: a multi-device image made by mkfs.erofs (computed layout), a single-device image, and
 * a raw blob; laziness, no double fetch, and a restart served from the persisted cache; and an
 * image packed with digest tables served lazily from a docker-registry on the guest's loopback,
 * every chunk verified.
 */
@Tag("vm")
class NbdKernelIT {
  @Test
  void kernelNbdDeviceMountsTheFlattenedImage() throws Exception {
    VmHarness.requireVm();
    Requirements.requireTool("mkfs.erofs");
    Path work = VmHarness.workDir("nbd");
    Path tree = TestTrees.mixed(work.resolve("tree"), 11);
    TestTrees.md5List(tree, work.resolve("tree.md5"));
    String layout = "oci:" + work.resolve("layout");
    Path blob = work.resolve("multi.blob");
    Requirements.run(
        "mkfs.erofs",
        "--quiet",
        "-T0",
        "--chunksize=1048576",
        "--blobdev=" + blob,
        work.resolve("multi.erofs").toString(),
        tree.toString());
    assertEquals(
        0,
        Main.run(
            "import",
            work.resolve("multi.erofs").toString(),
            blob.toString(),
            "--output",
            layout + ":multi"));
    Path single = work.resolve("single.erofs");
    Requirements.run("mkfs.erofs", "--quiet", "-T0", single.toString(), tree.toString());
    assertEquals(0, Main.run("import", single.toString(), "--output", layout + ":single"));
    long bootBlocks = (Files.size(work.resolve("multi.erofs")) + 4095) / 4096;
    long flatBlocks = (bootBlocks + 127) / 128 * 128 + (Files.size(blob) + 4095) / 4096;
    Files.writeString(work.resolve("blob.size"), Long.toString(Files.size(blob)));
    Files.writeString(work.resolve("flat.sectors"), Long.toString(flatBlocks * 8));
    Files.writeString(
        work.resolve("single.digest"), Digest.of(Files.readAllBytes(single)).toString());

    seedRegistry(work, tree);

    VmHarness.Run run =
        VmHarness.run(
            work, VmHarness.baseDir().resolve("src/test/vm/nbd-e2e.sh"), 900, work.toString());
    run.assertPassed(
        "nbd-device-present",
        "multi-attach",
        "multi-device-read-only",
        "multi-device-size",
        "second-attach-refused",
        "multi-mount",
        "multi-small-file",
        "multi-detach",
        "multi-device-released",
        "multi-partial-fetch-is-partial",
        "multi-md5",
        "multi-symlink",
        "multi-no-refetch",
        "multi-no-failed-reads",
        "multi-warm-md5",
        "multi-warm-zero-fetch",
        "single-md5",
        "raw-md5",
        "raw-detach",
        "reg-attach",
        "reg-mount",
        "reg-small-file",
        "reg-partial-is-partial",
        "reg-md5",
        "reg-detach",
        "reg-chunks-verified",
        "reg-no-failed-reads");
    System.out.printf(
        "nbd e2e summary: attach %d ms; partial read fetched %d of %d blob bytes; full md5 %d ms%n",
        run.result("multi-attach-ms"),
        run.result("multi-partial-bytes-fetched"),
        run.result("multi-blob-bytes"),
        run.result("multi-md5-ms"));
    System.out.printf(
        "nbd e2e from the guest's registry: a partial read made it serve %d of %d image bytes%n",
        run.result("reg-bytes-partial"), run.result("reg-image-bytes"));
  }

  /**
   * The guest's registry storage, seeded on the host: the tree packed and pushed ({@code pack
   * --push}, so the image has digest tables and its own flattened layout) to a fixture registry
   * over that storage; the guest serves a copy of it on 127.0.0.1:5000.
   */
  private static void seedRegistry(Path work, Path tree) throws Exception {
    Path toml = RegistryImages.config(work.resolve("guest-config"), null);
    try (DockerRegistryFixture seed =
        DockerRegistryFixture.builder(work.resolve("seed"))
            .storage(work.resolve("registry-storage"))
            .start()) {
      LazyImage img =
          RegistryImages.packAndPush(
              tree, seed.host() + "/nbd/app:v1", toml, work.resolve("scratch"));
      Files.writeString(work.resolve("image.bytes"), Long.toString(RegistryImages.imageBytes(img)));
    }
    Files.writeString(work.resolve("registry.yml"), VmHarness.guestRegistryConfig(5000, true, ""));
  }
}

package dev.lazypull.vm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.cli.Main;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.LazyImage;
import dev.lazypull.oci.OciLayout;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The acceptance test on a real kernel: inside the QEMU guest, Debian's docker-registry
 * with htpasswd auth serves a lazypull image on loopback; the guest daemon mounts it by registry
 * reference ({@code lazypull mount 127.0.0.1:5000/team/app:v1}), every file's md5 is checked, and
 * the registry's access log shows how many bytes a partial read cost against the image size.
 *
 * <p>The registry's storage is seeded on the host: a fixture registry with the same credentials
 * receives the image through {@code lazypull copy}, and the guest serves a copy of that storage
 * tree.
 */
@Tag("vm")
class RegistryKernelIT {
  static final String USER = "lazy";
  static final String PASSWORD = "pull-secret";

  @Test
  void mountFromARealRegistryWithAuthServesCorrectBytesAndPartialReadsFetchLittle()
      throws Exception {
    VmHarness.requireVm();
    Requirements.requireTool("mkfs.erofs");
    Requirements.requireTool("docker-registry");
    Path work = VmHarness.workDir("registry");
    Path tree = TestTrees.mixed(work.resolve("tree"), 43);
    TestTrees.write(
        tree.resolve("large.bin"),
        24 << 20,
        new Random(44)); // most of the image: never read partially
    TestTrees.md5List(tree, work.resolve("tree.md5"));
    Requirements.run(
        "mkfs.erofs",
        "--quiet",
        "-T0",
        "--chunksize=1048576",
        "--blobdev=" + work.resolve("img.blob"),
        work.resolve("img.erofs").toString(),
        tree.toString());
    String layout = "oci:" + work.resolve("layout") + ":v1";
    assertEquals(
        0,
        Main.run(
            "import",
            work.resolve("img.erofs").toString(),
            work.resolve("img.blob").toString(),
            "--output",
            layout));
    LazyImage image = new OciLayout(work.resolve("layout"), "v1").resolve();
    long imageBytes = image.allBlobs().stream().mapToLong(Descriptor::size).sum();

    // credentials: the same htpasswd user on the host fixture (for seeding) and in the guest
    String auth =
        Base64.getEncoder()
            .encodeToString((USER + ":" + PASSWORD).getBytes(StandardCharsets.UTF_8));
    Path storage = work.resolve("registry-storage");
    try (DockerRegistryFixture seed =
        DockerRegistryFixture.builder(work.resolve("seed"))
            .storage(storage)
            .basicAuth(USER, PASSWORD)
            .start()) {
      Files.writeString(
          work.resolve("seed-docker.json"),
          "{\"auths\":{\"" + seed.host() + "\":{\"auth\":\"" + auth + "\"}}}");
      Files.writeString(
          work.resolve("seed.toml"),
          "[registry]\ndocker_config = \"" + work.resolve("seed-docker.json") + "\"\n");
      assertEquals(
          0,
          Main.run(
              "copy",
              "--plain-http",
              "--config",
              work.resolve("seed.toml").toString(),
              layout,
              seed.host() + "/team/app:v1"));
    }
    Files.copy(work.resolve("seed/htpasswd"), work.resolve("htpasswd"));
    Files.writeString(
        work.resolve("registry.yml"),
        VmHarness.guestRegistryConfig(
            5000,
            true,
            """
        auth:
          htpasswd:
            realm: lazypull-guest
            path: %s
        """
                .formatted(work.resolve("htpasswd"))));
    Files.writeString(
        work.resolve("docker-config.json"),
        "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"" + auth + "\"}}}");
    Files.writeString(
        work.resolve("lazypull.toml"),
        """
        [daemon]
        log_level = "info"

        [registry]
        docker_config = "%s"

        [[registry.host]]
        name = "127.0.0.1:5000"
        plain_http = true
        """
            .formatted(work.resolve("docker-config.json")));
    Files.writeString(
        work.resolve("image.env"),
        "IMAGE=127.0.0.1:5000/team/app:v1\nIMAGE_BYTES=" + imageBytes + "\nPARTIAL_FILE=odd.bin\n");

    VmHarness.Run run =
        VmHarness.run(
            work, VmHarness.baseDir().resolve("src/test/vm/registry-e2e.sh"), 900, work.toString());
    run.assertPassed(
        "registry-requires-auth",
        "daemon-ready",
        "mount",
        "partial-md5",
        "partial-read-fetches-under-a-quarter",
        "full-md5",
        "each-byte-served-once",
        "whole-image-served",
        "no-failed-reads",
        "warm-md5",
        "warm-no-registry-bytes",
        "warm-zero-reads");
    long partial = run.result("registry-bytes-partial");
    System.out.printf(
        "registry e2e: image %d bytes; the registry served %d bytes (%.1f %%) for mount + one small "
            + "file, %d for every file; daemon bytesFetched %d; mount %d ms, full read %d ms, %d READs%n",
        imageBytes,
        partial,
        100.0 * partial / imageBytes,
        run.result("registry-bytes-full"),
        run.result("bytes-fetched"),
        run.result("mount-ms"),
        run.result("full-read-ms"),
        run.result("reads"));
    assertTrue(partial < imageBytes / 4);
  }
}

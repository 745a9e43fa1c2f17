package dev.lazypull.vm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lazypull.cli.Main;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Registry faults on a real kernel: inside the QEMU guest, docker-registry serves a packed image
 * through the test fault proxy; the daemon mounts it by registry reference while readers read, half
 * of the blob responses are damaged and the registry is stopped and restarted. Every reader ends
 * with correct bytes or EIO, never hangs; a local-layout image is served throughout; once the
 * faults stop, every file reads back correctly.
 */
@Tag("vm")
class FaultKernelIT {
  @Test
  void readersUnderRegistryFaultsGetCorrectBytesOrEioNeverAHangAndRecover() throws Exception {
    VmHarness.requireVm();
    Requirements.requireTool("docker-registry");
    Path work = VmHarness.workDir("fault");
    Path classes = VmHarness.baseDir().resolve("target/test-classes");
    Requirements.require(
        Files.isRegularFile(classes.resolve("dev/lazypull/testing/FaultProxy.class")),
        "compiled test classes in " + classes);
    Path tree = Files.createDirectories(work.resolve("tree"));
    Random rnd = new Random(21);
    for (int i = 0; i < 12; i++) { // f0..f11: three waves of four cold readers each
      TestTrees.write(tree.resolve("f" + i + ".bin"), (3 << 19) + i * 8191L, rnd);
    }
    TestTrees.md5List(tree, work.resolve("app.md5"));
    String layout = "oci:" + work.resolve("layout") + ":v1";
    assertEquals(0, Main.run("pack", tree.toString(), "--chunk-size", "256K", "--output", layout));
    Path localTree = Files.createDirectories(work.resolve("local-tree"));
    TestTrees.write(localTree.resolve("local.bin"), 3 << 20, rnd);
    TestTrees.md5List(localTree, work.resolve("local.md5"));
    assertEquals(
        0,
        Main.run("pack", localTree.toString(), "--output", "oci:" + work.resolve("local") + ":v1"));

    Path storage = work.resolve("registry-storage");
    try (DockerRegistryFixture seed =
        DockerRegistryFixture.builder(work.resolve("seed")).storage(storage).start()) {
      assertEquals(0, Main.run("copy", "--plain-http", layout, seed.host() + "/fault/app:v1"));
    }
    Files.writeString(work.resolve("registry.yml"), VmHarness.guestRegistryConfig(5001, false, ""));
    // the defaults' proportions (registry read timeout = READ deadline, request timeout 4x),
    // shortened for TCG
    Files.writeString(
        work.resolve("lazypull.toml"),
        """
        [daemon]
        images_dir = "/nonexistent/images.d"
        read_timeout = "8s"
        chunk_size = "256K"
        log_level = "info"

        [prefetch]
        policy = "none"

        [registry]
        connect_timeout = "2s"
        read_timeout = "8s"
        request_timeout = "32s"
        retries = 2

        [[registry.host]]
        name = "127.0.0.1:5000"
        plain_http = true
        """);
    Files.writeString(work.resolve("image.env"), "IMAGE=127.0.0.1:5000/fault/app:v1\n");

    VmHarness.Run run =
        VmHarness.run(
            work,
            VmHarness.baseDir().resolve("src/test/vm/fault-e2e.sh"),
            600,
            work.toString(),
            classes.toString());
    run.assertPassed(
        "registry-up",
        "proxy-up",
        "daemon-ready",
        "mount",
        "mount-local",
        "wave-1-under-faults",
        "wave-2-reads-in-flight",
        "local-md5-while-registry-down",
        "registry-outage-seen",
        "registry-restarted",
        "readers-ended",
        "no-reader-hung",
        "no-wrong-bytes",
        "every-reader-correct-or-eio",
        "faults-bit",
        "md5-after-recovery",
        "md5-after-drop-caches",
        "local-md5");
    System.out.printf(
        "fault e2e (real kernel): %d readers under faults (registry stopped and restarted): %d correct,"
            + " %d EIO, %d hung, %d wrong bytes, in %d ms; %d faults injected; daemon READs %d (ok %d, failed %d, "
            + "timed out %d), digest mismatches %d; after the faults every file correct, read in %d ms%n",
        run.result("readers-correct") + run.result("readers-eio") + run.result("readers-hung"),
        run.result("readers-correct"),
        run.result("readers-eio"),
        run.result("readers-hung"),
        run.result("readers-wrong-bytes"),
        run.result("fault-phase-ms"),
        run.result("faults-injected"),
        run.result("daemon-reads"),
        run.result("daemon-readsOk"),
        run.result("daemon-readsFailed"),
        run.result("daemon-readsTimedOut"),
        run.result("daemon-integrityMismatchesOrigin"),
        run.result("recovery-read-ms"));
  }
}

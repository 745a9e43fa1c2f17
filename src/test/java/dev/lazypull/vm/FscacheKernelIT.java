package dev.lazypull.vm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.cli.Main;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The walking skeleton's acceptance test: Debian's 6.12 kernel with ONDEMAND cachefiles/erofs under
 * QEMU, our jar as the daemon inside it, real `mount -t erofs none -o fsid=…` mounts of images made
 * by mkfs.erofs.
 */
@Tag("vm")
class FscacheKernelIT {
  @Test
  void fscacheMountsServeCorrectBytesAndWarmReadsSendNoReads() throws Exception {
    VmHarness.requireVm();
    Requirements.requireTool("mkfs.erofs");
    Path work = VmHarness.workDir("fscache");
    Path tree = TestTrees.mixed(work.resolve("tree"), 42);
    TestTrees.md5List(tree, work.resolve("tree.md5"));
    String t = tree.toString();
    String layout = "oci:" + work.resolve("layout");

    // (a) single device
    Requirements.run("mkfs.erofs", "--quiet", "-T0", work.resolve("single.erofs").toString(), t);
    assertEquals(
        0,
        Main.run(
            "import", work.resolve("single.erofs").toString(), "--output", layout + ":single"));
    // (b) bootstrap + one data blob, 1 MiB chunks, slot left untagged by mkfs.erofs 1.5
    Requirements.run(
        "mkfs.erofs",
        "--quiet",
        "-T0",
        "--chunksize=1048576",
        "--blobdev=" + work.resolve("multi.blob"),
        work.resolve("multi.erofs").toString(),
        t);
    assertEquals(
        0,
        Main.run(
            "import",
            work.resolve("multi.erofs").toString(),
            work.resolve("multi.blob").toString(),
            "--output",
            layout + ":multi"));
    // (c) two bootstraps (different build times) over one identical data blob
    for (int i = 1; i <= 2; i++) {
      Requirements.run(
          "mkfs.erofs",
          "--quiet",
          "-T" + (1000 * i),
          "--chunksize=1048576",
          "--blobdev=" + work.resolve("shared" + i + ".blob"),
          work.resolve("shared" + i + ".erofs").toString(),
          t);
    }
    assertArrayEquals(
        Files.readAllBytes(work.resolve("shared1.blob")),
        Files.readAllBytes(work.resolve("shared2.blob")),
        "same tree and chunk size give the same data blob");
    assertTrue(
        !TestTrees.md5(work.resolve("shared1.erofs"))
            .equals(TestTrees.md5(work.resolve("shared2.erofs"))));
    for (int i = 1; i <= 2; i++) {
      assertEquals(
          0,
          Main.run(
              "import",
              work.resolve("shared" + i + ".erofs").toString(),
              work.resolve("shared1.blob").toString(),
              "--output",
              layout + ":shared" + i));
    }

    VmHarness.Run run =
        VmHarness.run(
            work, VmHarness.baseDir().resolve("src/test/vm/fscache-e2e.sh"), 1500, work.toString());
    run.assertPassed(
        "daemon-refuses-tmpfs-cache",
        "daemon-ready",
        "second-daemon-devnode-busy",
        "single-md5-cold",
        "single-zero-reads-after-drop-caches",
        "single-zero-reads-after-remount",
        "unknown-fsid-mount-fails",
        "unknown-fsid-refused-by-daemon",
        "daemon-alive-after-unknown",
        "multi-md5-cold",
        "multi-zero-reads-after-drop-caches",
        "multi-zero-reads-after-remount",
        "shared1-md5-cold",
        "shared1-zero-reads-after-remount",
        "shared2-md5",
        "shared-blob-opened-once",
        "no-failed-reads",
        "gc-within-budget",
        "gc-freed-something",
        "after-gc-md5",
        "after-gc-refetched",
        "evict-image",
        "after-evict-md5",
        "after-evict-refetched",
        "profile-recorded",
        "profile-prefetch-finished",
        "profile-md5",
        "profile-replay-left-no-reads",
        "prefetch-all-wait",
        "prefetch-md5",
        "prefetch-left-no-reads",
        "prefetch-unknown-image-fails");
    System.out.printf(
        "fscache e2e summary: READs served %d, bytes written %d; single: mount %d ms, cold read "
            + "%d ms, %d READs; multi: mount %d ms, cold read %d ms, %d READs%n",
        run.result("reads-total"),
        run.result("bytes-written"),
        run.result("single-mount-ms"),
        run.result("single-cold-read-ms"),
        run.result("single-reads"),
        run.result("multi-mount-ms"),
        run.result("multi-cold-read-ms"),
        run.result("multi-reads"));
  }
}

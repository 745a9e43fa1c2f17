package dev.lazypull.vm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lazypull.cli.Main;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Restart without breaking mounts: kill -9 the daemon while readers block on cold reads; the
 * supervisor (a stand-in for systemd's fd store, native-stubs/fdstore) hands the devnode back, the
 * new daemon restores.
 */
@Tag("vm")
class FailoverKernelIT {
  @Test
  void killNineWhileReadersBlockLosesNothing() throws Exception {
    VmHarness.requireVm();
    Requirements.requireTool("mkfs.erofs");
    Requirements.requireTool("gcc");
    Path work = VmHarness.workDir("failover");
    Path tree = Files.createDirectories(work.resolve("tree"));
    Random rnd = new Random(7);
    for (int i = 0; i < 4; i++) {
      TestTrees.write(tree.resolve("big" + i + ".bin"), (64 << 20) + i * 4096 + 123, rnd);
    }
    TestTrees.md5List(tree, work.resolve("big.md5"));
    Requirements.run(
        "mkfs.erofs",
        "--quiet",
        "-T0",
        "--chunksize=1048576",
        "--blobdev=" + work.resolve("big.blob"),
        work.resolve("big.erofs").toString(),
        tree.toString());
    assertEquals(
        0,
        Main.run(
            "import",
            work.resolve("big.erofs").toString(),
            work.resolve("big.blob").toString(),
            "--output",
            "oci:" + work.resolve("layout") + ":big"));
    Path supervisor = work.resolve("fdstore-supervisor");
    Requirements.run(
        "gcc",
        "-O2",
        "-o",
        supervisor.toString(),
        VmHarness.baseDir().resolve("native-stubs/fdstore/fdstore-supervisor.c").toString());

    VmHarness.Run run =
        VmHarness.run(
            work,
            VmHarness.baseDir().resolve("src/test/vm/failover-e2e.sh"),
            1200,
            work.toString(),
            supervisor.toString());
    run.assertPassed(
        "daemon-ready",
        "devnode-parked-in-fd-store",
        "ready-notified",
        "mount",
        "reads-in-flight-at-kill",
        "readers-still-running",
        "daemon-restarted-and-took-over",
        "readers-finish",
        "every-reader-succeeded",
        "bytes-correct",
        "no-eio-in-kernel-log",
        "restarted-daemon-served-reads",
        "restarted-daemon-no-failed-reads",
        "md5-after-drop-caches");
    System.out.printf(
        "failover: restarted daemon served %d READs, kernel EIO messages %d%n",
        run.result("reads-served-after-restart"), run.result("kernel-eio-messages"));
  }
}

package dev.lazypull.vm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lazypull.cli.Main;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.VmHarness;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The writable export on a real kernel block device, in the QEMU guest (Debian's 6.12 kernel,
 * nbd.ko): a disk image (ext4 made and imported here) served {@code --writable --device /dev/nbd0},
 * mounted with discard; files written and deleted, {@code fstrim} (the kernel's discards reach the
 * export as TRIMs); the stopped overlay snapshotted, restored onto {@code /dev/nbd1} writable
 * again, every file's md5 right, the deleted ones gone.
 */
@Tag("vm")
class NbdWritableKernelIT {
  @Test
  void aWritableDiskOnTheKernelsNbdDeviceSnapshotsAndRestores() throws Exception {
    VmHarness.requireVm();
    Requirements.requireTool("mkfs.ext4");
    Path work = VmHarness.workDir("nbd-writable-kernel");
    Path disk = work.resolve("disk.img");
    Path mnt = Files.createDirectories(work.resolve("mnt-build"));
    Requirements.run(
        "bash",
        "-c",
        String.join(
            "\n",
            "set -eu",
            "truncate -s 64M '" + disk + "'",
            "mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=1,lazy_journal_init=1 '" + disk + "'",
            "mount -o loop '" + disk + "' '" + mnt + "'",
            "trap \"cd /; umount '" + mnt + "'\" EXIT",
            "head -c 3000000 /dev/urandom > '" + mnt + "/a'",
            "mkdir '" + mnt + "/d' && head -c 200000 /dev/urandom > '" + mnt + "/d/b'",
            "echo hello > '" + mnt + "/hello.txt'",
            "(cd '" + mnt + "' && md5sum a d/b hello.txt > '" + work.resolve("disk.md5") + "')"));
    assertEquals(
        0,
        Main.run(
            "import",
            "--disk",
            disk.toString(),
            "--output",
            "oci:" + work.resolve("layout") + ":disk"));
    VmHarness.Run run =
        VmHarness.run(
            work,
            VmHarness.baseDir().resolve("src/test/vm/nbd-writable-e2e.sh"),
            900,
            work.toString());
    run.assertPassed(
        "w1-attach",
        "w1-device-writable",
        "w1-discard-advertised",
        "w1-mount",
        "w1-base-md5",
        "w1-write",
        "w1-delete",
        "w1-umount",
        "w1-detach",
        "w1-trims-reached",
        "w1-flushes-reached",
        "w1-no-failed-writes",
        "snapshot",
        "w2-attach",
        "w2-mount",
        "w2-md5",
        "w2-deleted-stay-deleted",
        "w2-write",
        "w2-umount",
        "w2-detach");
    System.out.printf(
        "nbd writable e2e: the overlay took %d KiB after writing 19 MB and deleting 16 MB%n",
        run.result("w1-overlay-allocated-kib"));
  }
}

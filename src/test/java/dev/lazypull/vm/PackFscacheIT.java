package dev.lazypull.vm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lazypull.cli.Main;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestImages;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Images built by our own writer, served lazily through the real kernel's fscache on-demand path:
 * Debian 6.12 under QEMU, the daemon inside, `lazypull mount` by reference, md5 of every file.
 */
@Tag("vm")
class PackFscacheIT {
  @Test
  void packedAndConvertedImagesMountThroughTheDaemonAndReadCorrectly() throws Exception {
    VmHarness.requireVm();
    Requirements.requireTool("tar");
    Path work = VmHarness.workDir("pack");
    Path tree = TestTrees.mixed(work.resolve("tree"), 43);
    TestTrees.md5List(tree, work.resolve("packed.md5"));
    String layout = "oci:" + work.resolve("layout");
    assertEquals(
        0,
        Main.run("pack", tree.toString(), "--blob-size-cap", "4M", "--output", layout + ":packed"));

    String sh =
        String.join(
            "\n",
            "set -euo pipefail",
            "cd '" + work + "'",
            "mkdir -p l1/opaque l2/opaque want",
            "head -c 2500000 /dev/urandom > l1/base.bin; echo gone > l1/gone.txt; echo old > l1/opaque/old.txt",
            "echo keep > l1/keep.txt; touch l2/.wh.gone.txt l2/opaque/.wh..wh..opq; echo new > l2/opaque/new.txt",
            "head -c 1500000 /dev/urandom > l2/top.bin",
            "cp -a l1/base.bin l1/keep.txt l2/top.bin want/; mkdir want/opaque; cp l2/opaque/new.txt want/opaque/");
    Requirements.run("bash", "-c", sh);
    TestTrees.md5List(work.resolve("want"), work.resolve("converted.md5"));
    Path src = work.resolve("src-layout");
    TestImages.write(
        src,
        "v1",
        List.of(
            TestImages.tarOf(work.resolve("l1"), work.resolve("l1.tar.gz"), "gzip"),
            TestImages.tarOf(work.resolve("l2"), work.resolve("l2.tar"), "none")));
    assertEquals(0, Main.run("convert", "oci:" + src + ":v1", layout + ":converted"));

    VmHarness.Run run =
        VmHarness.run(
            work, VmHarness.baseDir().resolve("src/test/vm/pack-e2e.sh"), 900, work.toString());
    run.assertPassed(
        "daemon-ready",
        "packed-mount",
        "packed-no-device-options",
        "packed-md5",
        "packed-served-lazily",
        "packed-symlink",
        "converted-mount",
        "converted-md5",
        "converted-whiteout",
        "converted-opaque",
        "no-failed-reads");
    System.out.printf(
        "pack fscache e2e: packed %d READs in %d ms; converted %d READs in %d ms%n",
        run.result("packed-reads"),
        run.result("packed-cold-read-ms"),
        run.result("converted-reads"),
        run.result("converted-cold-read-ms"));
  }
}

package dev.lazypull.pack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.blob.ImageSource;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.cli.Main;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.testing.ErofsMounts;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestImages;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `lazypull convert` of a three-layer image (gzip, zstd, plain tar) with a whiteout, an opaque
 * directory, a file replaced by a directory, and an entry written through a symlinked directory,
 * mounted by the host kernel and compared with the merged tree built by hand; images sharing a base
 * layer share its data blob.
 */
class ConvertMountIT {
  @TempDir Path tmp;

  @Test
  void convertedMultiLayerImageMountsAsTheMergedTree() throws Exception {
    ErofsMounts.requireKernelMounts();
    Requirements.requireTool("tar");
    Requirements.requireTool("zstd");
    String sh =
        String.join(
            "\n",
            "set -euo pipefail",
            "cd '" + tmp + "'",
            "mkdir -p l1/etc l1/app l1/opaque/sub l1/lib l2/app l2/opaque l2/replaced l3/libdir l2/etc",
            "echo conf-v1 > l1/etc/conf; echo keep > l1/etc/keep; echo a > l1/app/a; echo b > l1/app/b",
            "head -c 3000000 /dev/urandom > l1/app/big; echo old1 > l1/opaque/old1; echo old3 > l1/opaque/sub/old3",
            "echo lower > l1/lower-only.txt; echo file > l1/replaced; ln -s lib l1/libdir; ln l1/app/a l1/app/a-link",
            "mkfifo l1/fifo; echo owned > l1/owned; chown 1234:4321 l1/owned; setfattr -n user.k -v v l1/etc/keep",
            "touch l2/.wh.lower-only.txt l2/app/.wh.b l2/opaque/.wh..wh..opq",
            "echo new1 > l2/opaque/new1; echo conf-v2 > l2/etc/conf; echo c > l2/app/c; echo inside > l2/replaced/f",
            "echo so > l3/libdir/x.so",
            // The expected merged tree, built by hand.
            "cp -a l1 want; rm want/lower-only.txt want/app/b; rm -rf want/opaque/old1 want/opaque/sub",
            "echo new1 > want/opaque/new1; echo conf-v2 > want/etc/conf; echo c > want/app/c",
            "rm want/replaced; mkdir want/replaced; echo inside > want/replaced/f; echo so > want/lib/x.so",
            "for d in l1 l2 l3 want; do find $d -exec touch -h -d @1600000000 {} +; done");
    Requirements.run("bash", "-c", sh);
    Path layout = tmp.resolve("src-layout");
    TestImages.Layer base = TestImages.tarOf(tmp.resolve("l1"), tmp.resolve("l1.tar.gz"), "gzip");
    TestImages.write(
        layout,
        "v1",
        List.of(
            base,
            TestImages.tarOf(tmp.resolve("l2"), tmp.resolve("l2.tar.zst"), "zstd"),
            TestImages.tarOf(tmp.resolve("l3"), tmp.resolve("l3.tar"), "none", "libdir/x.so")));
    Path out = tmp.resolve("lazy");
    assertEquals(0, Main.run("convert", "oci:" + layout + ":v1", "oci:" + out + ":v1"));

    List<Path> files = ErofsMounts.files(out, "v1");
    assertEquals(4, files.size(), "bootstrap + one data blob per source layer");
    String expected = ErofsMounts.list(tmp.resolve("want"));
    ErofsMounts.assertSameListing(
        expected,
        ErofsMounts.listWithDevices(files.get(0), files.subList(1, 4), tmp.resolve("mnt")),
        "converted image");
    Requirements.run(
        "fsck.erofs",
        "--device=" + files.get(1),
        "--device=" + files.get(2),
        "--device=" + files.get(3),
        files.get(0).toString());

    ImageSource s = ImageSources.localOnly().open("oci:" + out + ":v1");
    LazyImage img = s.resolve();
    assertEquals(3, img.chunkTables().size());
    JsonNode config =
        Json.MAPPER.readTree(
            s.readRange(img.manifest().config(), 0, (int) img.manifest().config().size()));
    assertEquals(
        "GREETING=hi", config.path("config").path("Env").get(1).asText(), "source config kept");
    assertEquals(img.manifest().layers().size(), config.path("rootfs").path("diff_ids").size());
    assertTrue(config.path("history").isMissingNode());

    // A second image on the same base layer: the base's data blob is shared, the top one differs.
    Requirements.run("bash", "-c", "cd '" + tmp + "' && mkdir l4 && echo other > l4/other");
    TestImages.write(
        layout,
        "v2",
        List.of(base, TestImages.tarOf(tmp.resolve("l4"), tmp.resolve("l4.tar"), "none")));
    assertEquals(0, Main.run("convert", "oci:" + layout + ":v2", "oci:" + out + ":v2"));
    List<Path> files2 = ErofsMounts.files(out, "v2");
    assertEquals(files.get(1), files2.get(1), "images sharing a base layer share its data blob");
    assertNotEquals(files.get(2), files2.get(2));
    assertTrue(Files.exists(files2.get(2)));
  }
}

package dev.lazypull.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.blob.ImageSource;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageRegistrar;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.erofs.BootstrapHeader;
import dev.lazypull.image.LazyImage;
import dev.lazypull.testing.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Images made by erofs-utils' mkfs.erofs, wrapped by `lazypull import` and read back as the daemon
 * does.
 */
class ImportInspectTest {
  @TempDir Path tmp;

  @Test
  void importsSingleAndMultiDeviceMkfsImages() throws Exception {
    Requirements.requireTool("mkfs.erofs");
    Path src = Files.createDirectories(tmp.resolve("src/sub"));
    Files.writeString(tmp.resolve("src/hello.txt"), "hello\n");
    Files.write(src.resolve("data.bin"), new byte[3 << 20]);
    Path single = tmp.resolve("single.erofs");
    Path boot = tmp.resolve("boot.erofs");
    Path blob = tmp.resolve("blob.img");
    Requirements.run("mkfs.erofs", "--quiet", single.toString(), tmp.resolve("src").toString());
    Requirements.run(
        "mkfs.erofs",
        "--quiet",
        "--chunksize=1048576",
        "--blobdev=" + blob,
        boot.toString(),
        tmp.resolve("src").toString());

    String layout = "oci:" + tmp.resolve("layout");
    assertEquals(0, Main.run("import", single.toString(), "--output", layout + ":single"));
    assertEquals(
        0, Main.run("import", boot.toString(), blob.toString(), "--output", layout + ":multi"));

    ImageSources sources = ImageSources.localOnly();
    ImageSource s1 = sources.open(layout + ":single");
    LazyImage i1 = s1.resolve();
    BootstrapHeader h1 = ImageRegistrar.readHeader(s1, i1);
    assertEquals(0, h1.devices().size());
    assertEquals(Files.size(single), i1.bootstrap().size());
    ImageRecord r1 = ImageRegistrar.describe(i1, h1, null, null);
    assertEquals("fsid=" + r1.fsid(), r1.mountOptions());

    ImageSource s2 = sources.open(layout + ":multi");
    LazyImage i2 = s2.resolve();
    BootstrapHeader h2 =
        ImageRegistrar.readHeader(s2, i2); // verifies mkfs's superblock checksum too
    assertEquals(1, h2.devices().size());
    assertTrue(!h2.devices().get(0).isTagged(), "mkfs.erofs 1.5 leaves device slots untagged");
    ImageRecord r2 = ImageRegistrar.describe(i2, h2, "myfs", "dom");
    assertEquals(
        "fsid=myfs,domain_id=dom,device=" + i2.blobs().get(0).digest().hex(), r2.mountOptions());

    assertEquals(0, Main.run("inspect", layout + ":multi"));
    assertEquals(0, Main.run("inspect", "--json", layout + ":single"));
    assertEquals(1, Main.run("inspect", layout + ":nope"), "an unknown tag is a clear error");
  }
}

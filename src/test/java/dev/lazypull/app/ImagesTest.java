package dev.lazypull.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.blob.ImageSource;
import dev.lazypull.compress.Compression;
import dev.lazypull.index.IndexedImages;
import dev.lazypull.pack.DiskImporter;
import dev.lazypull.pack.OciLayoutOutput;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Images#resolve} through the sources the NBD export really opens: with a host cache, an
 * image is opened index-aware (wrapped), and a disk image must still be told from its manifest.
 */
class ImagesTest {
  @TempDir Path dir;

  @Test
  void aDiskImageIsADiskThroughTheIndexAwareSource() throws Exception {
    byte[] bytes = new byte[3 * 65536 + 100];
    new Random(1).nextBytes(bytes);
    Path f = Files.write(dir.resolve("disk.img"), bytes);
    Path layout = dir.resolve("layout");
    try (OciLayoutOutput out = new OciLayoutOutput(layout, "disk")) {
      out.publish(DiskImporter.importDisk(f, out, Compression.ZSTD, 65536, 3).manifest());
    }
    String ref = "oci:" + layout + ":disk";
    try (RegistryClient client = RegistryClient.create(RegistryConfig.defaults())) {
      ImageSource source = Sources.over(client, dir.resolve("cache")).open(ref);
      assertTrue(source instanceof IndexedImages.Source, source.getClass().getName());
      Images.Resolved r = Images.resolve(source, ref);
      assertNull(r.lazy());
      assertNotNull(r.disk());
      assertEquals(bytes.length, r.disk().size());
    }
  }
}

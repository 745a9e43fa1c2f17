package dev.lazypull.pack;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.Json;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.registry.CredentialStore;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import dev.lazypull.registry.RegistryException;
import dev.lazypull.testing.FakeRegistry;
import dev.lazypull.testing.MemoryBlobSource;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import mockwebserver3.MockWebServer;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link RegistrySourceImage}: verified layer downloads through scratch files, bounded config
 * reads.
 */
class RegistrySourceImageTest {
  @StartStop public final MockWebServer server = new MockWebServer();
  private final FakeRegistry reg = new FakeRegistry();
  @TempDir Path tmp;
  private RegistryClient client;

  @BeforeEach
  void setUp() throws IOException {
    server.setDispatcher(reg);
    client =
        new RegistryClient(
            RegistryConfig.defaults().withPlainHttp(true), CredentialStore.anonymous(), d -> {});
  }

  @AfterEach
  void tearDown() {
    client.close();
  }

  private ImageReference.Registry image(List<byte[]> layers, byte[] config) {
    String cfg = reg.putBlob("src/app", config);
    List<Descriptor> descs =
        layers.stream()
            .map(
                b ->
                    new Descriptor(
                        MediaTypes.OCI_LAYER_TAR,
                        Digest.parse(reg.putBlob("src/app", b)),
                        b.length))
            .toList();
    Manifest m =
        new Manifest(
            2,
            MediaTypes.OCI_MANIFEST,
            null,
            new Descriptor(MediaTypes.OCI_CONFIG, Digest.parse(cfg), config.length),
            descs,
            Map.of());
    reg.putManifest("src/app", "v1", Json.write(m), MediaTypes.OCI_MANIFEST);
    return (ImageReference.Registry)
        ImageReference.parse(server.getHostName() + ":" + server.getPort() + "/src/app:v1");
  }

  private static long scratchFiles(Path root) throws IOException {
    try (var s = Files.walk(root)) {
      return s.filter(Files::isRegularFile).count();
    }
  }

  @Test
  void aLayerListedTwiceIsServedTwiceAndEveryScratchFileGoes() throws Exception {
    byte[] a = MemoryBlobSource.randomBytes(300_000, 1);
    byte[] b = MemoryBlobSource.randomBytes(1000, 2);
    Path scratch = tmp.resolve("scratch");
    try (RegistrySourceImage src =
        RegistrySourceImage.open(client, image(List.of(a, b, a), "{}".getBytes()), scratch)) {
      assertArrayEquals("{}".getBytes(), src.config());
      List<Descriptor> layers = src.manifest().layers();
      for (int i = 0; i < layers.size(); i++) {
        try (InputStream in = src.openLayer(layers.get(i))) {
          assertArrayEquals(i == 1 ? b : a, in.readAllBytes(), "layer " + i);
        }
      }
      assertEquals(0, scratchFiles(scratch), "each layer's file deleted when its stream closed");
    }
    assertTrue(!Files.exists(scratch) || scratchFiles(scratch) == 0);
  }

  @Test
  void tamperedLayersAndOversizedConfigsAreRefused() throws Exception {
    byte[] a = MemoryBlobSource.randomBytes(10_000, 3);
    ImageReference.Registry ref = image(List.of(a), "{}".getBytes());
    String d = Digest.of(a).toString();
    byte[] bad = a.clone();
    bad[5000] ^= 1;
    reg.blobs.get("src/app").put(d, bad); // served under the original digest
    Path scratch = tmp.resolve("scratch");
    try (RegistrySourceImage src = RegistrySourceImage.open(client, ref, scratch)) {
      RegistryException e =
          assertThrows(
              RegistryException.class, () -> src.openLayer(src.manifest().layers().get(0)));
      assertTrue(
          e.getMessage().contains(d) && e.getMessage().contains("hashes to"), e.getMessage());
      assertEquals(0, scratchFiles(scratch), "unverified bytes deleted");
    }

    byte[] huge = new byte[Json.MAX_DOCUMENT_BYTES + 1];
    try (RegistrySourceImage src =
        RegistrySourceImage.open(client, image(List.of(a), huge), scratch)) {
      InvalidImageException e = assertThrows(InvalidImageException.class, src::config);
      assertTrue(e.getMessage().contains("limit"), e.getMessage());
    }
  }
}

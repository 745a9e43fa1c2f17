package dev.lazypull.copy;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.oci.OciLayout;
import dev.lazypull.oci.OciLayoutWriter;
import dev.lazypull.registry.CredentialStore;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import dev.lazypull.registry.RegistryImageSource;
import dev.lazypull.registry.RetryPolicy;
import dev.lazypull.testing.FakeRegistry;
import dev.lazypull.testing.MemoryBlobSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import mockwebserver3.MockWebServer;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Layout → registry → layout round trips against the fake distribution API. */
class ImageCopierTest {
  @StartStop public final MockWebServer server = new MockWebServer();
  @TempDir Path tmp;
  private final FakeRegistry reg = new FakeRegistry();
  private RegistryClient client;
  private String host;
  private Path layout;
  private Descriptor manifest;

  @BeforeEach
  void setUp() throws IOException {
    server.setDispatcher(reg);
    host = server.getHostName() + ":" + server.getPort();
    client =
        new RegistryClient(
            RegistryConfig.defaults()
                .withPlainHttp(true)
                .withRetry(new RetryPolicy(0, Duration.ZERO, Duration.ZERO, Duration.ZERO)),
            CredentialStore.anonymous(),
            d -> {});
    layout = tmp.resolve("src");
    OciLayoutWriter w = new OciLayoutWriter(layout);
    Descriptor boot = w.putBlob(MemoryBlobSource.randomBytes(8192, 1), MediaTypes.EROFS_BOOTSTRAP);
    Descriptor blob = w.putBlob(MemoryBlobSource.randomBytes(200_000, 2), MediaTypes.EROFS_BLOB);
    Descriptor config =
        w.putBlob(LazyManifests.minimalConfig(List.of(boot, blob)), MediaTypes.OCI_CONFIG);
    manifest =
        w.putBlob(
            Json.write(LazyManifests.manifest(config, boot, List.of(blob), Map.of())),
            MediaTypes.OCI_MANIFEST);
    w.tag(manifest, "v1");
  }

  private RegistryImageSource registry(String ref) {
    return new RegistryImageSource(
        client, (ImageReference.Registry) ImageReference.parse(host + "/" + ref));
  }

  @Test
  void aLayoutGoesToARegistryAndBackByteForByte() throws Exception {
    List<String> lines = new ArrayList<>();
    ImageCopier.Result up =
        ImageCopier.copy(
            new OciLayout(layout, "v1"),
            new RegistryTarget(
                client.pusher(),
                (ImageReference.Registry) ImageReference.parse(host + "/team/app:v1")),
            lines::add);
    assertEquals(3, up.blobsCopied());
    assertEquals(manifest.digest(), up.manifest().digest());
    assertTrue(
        lines.get(lines.size() - 1).startsWith("manifest " + manifest.digest()), lines.toString());
    List<String> methods = reg.requests.stream().map(r -> r.getMethod()).toList();
    assertEquals("PUT", methods.get(methods.size() - 1), "the manifest goes last");

    ImageCopier.Result again =
        ImageCopier.copy(
            new OciLayout(layout, "v1"),
            new RegistryTarget(
                client.pusher(),
                (ImageReference.Registry) ImageReference.parse(host + "/team/app:v1")),
            l -> {});
    assertEquals(0, again.blobsCopied());
    assertEquals(3, again.blobsPresent());

    Path back = tmp.resolve("back");
    ImageCopier.copy(registry("team/app:v1"), new OciLayoutTarget(back, "v2"), l -> {});
    assertEquals(manifest.digest(), new OciLayout(back, "v2").resolve().manifestDigest());
    for (Descriptor d : new OciLayout(layout, "v1").resolve().allBlobs()) {
      assertArrayEquals(
          Files.readAllBytes(layout.resolve("blobs/sha256/" + d.digest().hex())),
          Files.readAllBytes(back.resolve("blobs/sha256/" + d.digest().hex())));
    }
  }

  @Test
  void aCorruptBlobFromTheRegistryNeverLandsInTheLayout() throws Exception {
    ImageCopier.copy(
        new OciLayout(layout, "v1"),
        new RegistryTarget(
            client.pusher(), (ImageReference.Registry) ImageReference.parse(host + "/team/app:v1")),
        l -> {});
    Descriptor blob = new OciLayout(layout, "v1").resolve().blobs().get(0);
    byte[] evil = reg.blob("team/app", blob.digest().toString()).clone();
    evil[1234] ^= 1;
    reg.blobs.get("team/app").put(blob.digest().toString(), evil);
    Path back = tmp.resolve("back");
    IOException e =
        assertThrows(
            IOException.class,
            () ->
                ImageCopier.copy(
                    registry("team/app:v1"), new OciLayoutTarget(back, "v1"), l -> {}));
    assertTrue(e.getMessage().contains(blob.digest().toString()), e.getMessage());
    assertFalse(
        Files.exists(back.resolve("blobs/sha256/" + blob.digest().hex())), "no unverified blob");
    try (var files = Files.list(back.resolve("blobs/sha256"))) {
      assertTrue(
          files.noneMatch(p -> p.getFileName().toString().startsWith(".incoming")), "no leftovers");
    }
    assertFalse(
        Files.readString(back.resolve("index.json")).contains(manifest.digest().toString()),
        "and no tag pointing at an incomplete image");
  }
}

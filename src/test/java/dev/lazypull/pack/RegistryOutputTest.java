package dev.lazypull.pack;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.registry.CredentialStore;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import dev.lazypull.registry.RetryPolicy;
import dev.lazypull.testing.FakeRegistry;
import dev.lazypull.testing.MemoryBlobSource;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import mockwebserver3.MockWebServer;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link RegistryOutput} against the fake distribution API: what is pushed, in which order, and
 * failures.
 */
class RegistryOutputTest {
  @StartStop public final MockWebServer server = new MockWebServer();
  private final FakeRegistry reg = new FakeRegistry();
  @TempDir Path tmp;
  private RegistryClient client;
  private Path tree;

  @BeforeEach
  void setUp() throws IOException {
    server.setDispatcher(reg);
    client =
        new RegistryClient(
            RegistryConfig.defaults()
                .withPlainHttp(true)
                .withRetry(
                    new RetryPolicy(
                        1, Duration.ofMillis(1), Duration.ofMillis(5), Duration.ofSeconds(1))),
            CredentialStore.anonymous(),
            d -> {});
    tree = Files.createDirectories(tmp.resolve("tree"));
    Files.write(tree.resolve("big"), MemoryBlobSource.randomBytes(3 << 20, 1));
    Files.writeString(tree.resolve("small"), "hello");
  }

  @AfterEach
  void tearDown() {
    client.close();
  }

  private ImageReference.Registry ref(String repoAndTag) {
    return (ImageReference.Registry)
        ImageReference.parse(server.getHostName() + ":" + server.getPort() + "/" + repoAndTag);
  }

  private static long filesUnder(Path dir) throws IOException {
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(Files::isRegularFile).count();
    }
  }

  @Test
  void pushesEveryBlobThenTagsTheManifestAndLeavesNoScratch() throws Exception {
    Path scratch = tmp.resolve("scratch");
    Progress progress = Progress.silent();
    ImageBuilder.Built built;
    try (RegistryOutput out =
        new RegistryOutput(client.pusher(), ref("team/app:v1"), scratch, null, progress)) {
      built = Packer.pack(tree, out, new Packer.Options(1 << 20, 0, 2, 0L), progress);
    }
    assertEquals(0, filesUnder(scratch), "scratch files deleted");
    FakeRegistry.StoredManifest m = reg.manifests.get("team/app:v1");
    assertNotNull(m, "tagged");
    assertEquals(MediaTypes.OCI_MANIFEST, m.mediaType());
    assertEquals(built.manifest().digest(), Digest.of(m.bytes()));
    Manifest manifest = Json.parse(m.bytes(), Manifest.class, "pushed");
    LazyImage img = LazyImage.of("pushed", built.manifest().digest(), manifest);
    assertNotNull(reg.blob("team/app", manifest.config().digest().toString()), "config pushed");
    for (Descriptor d : manifest.layers()) {
      byte[] b = reg.blob("team/app", d.digest().toString());
      assertNotNull(b, d.mediaType() + " pushed");
      assertEquals(d.size(), b.length);
    }
    assertEquals(1, img.chunkTables().size());
    assertTrue(
        progress.bytesPushed.get() >= 3 << 20, "uploads counted: " + progress.bytesPushed.get());
    int manifestPut = -1;
    int lastBlobPut = -1;
    for (int i = 0; i < reg.requests.size(); i++) {
      var r = reg.requests.get(i);
      if (r.getMethod().equals("PUT") && r.getUrl().encodedPath().contains("/manifests/")) {
        manifestPut = i;
      } else if (r.getMethod().equals("PUT")) {
        lastBlobPut = i;
      }
    }
    assertTrue(lastBlobPut >= 0 && lastBlobPut < manifestPut, "manifest after every blob");

    // Again: every blob is there already, so only HEADs and the manifest.
    reg.requests.clear();
    try (RegistryOutput out =
        new RegistryOutput(client.pusher(), ref("team/app:v2"), scratch, null, Progress.silent())) {
      Packer.pack(tree, out, new Packer.Options(1 << 20, 0, 2, 0L), Progress.silent());
    }
    assertTrue(
        reg.requests.stream().noneMatch(r -> r.getMethod().equals("POST")), "no upload started");
    assertArrayEquals(m.bytes(), reg.manifests.get("team/app:v2").bytes());
  }

  @Test
  void aFailedBlobUploadTagsNothingAndCleansUp() throws Exception {
    reg.intercept =
        r ->
            r.getMethod().equals("PUT")
                    && r.getUrl().encodedPath().contains("/blobs/uploads/")
                    && r.getBodySize() > (1 << 20)
                ? FakeRegistry.error(400, "BLOB_UPLOAD_INVALID", "refused for the test")
                : null;
    Path scratch = tmp.resolve("scratch");
    IOException e =
        assertThrows(
            IOException.class,
            () -> {
              try (RegistryOutput out =
                  new RegistryOutput(
                      client.pusher(), ref("team/app:v1"), scratch, null, Progress.silent())) {
                Packer.pack(tree, out, new Packer.Options(1 << 20, 0, 2, 0L), Progress.silent());
              }
            });
    assertTrue(
        e.getMessage().contains("BLOB_UPLOAD_INVALID") && e.getMessage().contains("team/app"),
        e.getMessage());
    assertTrue(reg.requestsTo("/manifests/").isEmpty(), "no manifest PUT");
    assertEquals(0, filesUnder(scratch));
  }

  @Test
  void aRefusedUploadStopsTheBuildAtTheNextBlobNotAtTheEnd() throws Exception {
    reg.intercept =
        r ->
            r.getMethod().equals("POST")
                ? FakeRegistry.error(403, "DENIED", "no pushing for the test")
                : null;
    IOException e = null;
    int blobs = 0;
    try (RegistryOutput out =
        new RegistryOutput(
            client.pusher(), ref("team/app:v1"), tmp.resolve("scratch"), null, Progress.silent())) {
      long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (e == null && System.nanoTime() < end) {
        byte[] bytes = ("blob " + blobs++).getBytes(StandardCharsets.UTF_8);
        Path f = out.newScratchFile();
        Files.write(f, bytes);
        try {
          out.putFile(f, MediaTypes.EROFS_BLOB, Digest.of(bytes));
        } catch (IOException x) {
          e = x;
        }
        Thread.sleep(20);
      }
    }
    assertNotNull(e, "the build went on after its upload was refused");
    assertTrue(e.getMessage().contains("DENIED"), e.getMessage());
    assertTrue(blobs < 100, blobs + " blobs handed over before the failure was noticed");
  }

  @Test
  void aDigestPinnedReferenceMustMatchTheBuiltManifest() throws Exception {
    ImageReference.Registry pinned = ref("team/app@sha256:" + "0".repeat(64));
    IOException e =
        assertThrows(
            IOException.class,
            () -> {
              try (RegistryOutput out =
                  new RegistryOutput(
                      client.pusher(), pinned, tmp.resolve("s"), null, Progress.silent())) {
                Packer.pack(tree, out, new Packer.Options(1 << 20, 0, 2, 0L), Progress.silent());
              }
            });
    assertTrue(e.getMessage().contains("not the one in the reference"), e.getMessage());
    assertTrue(reg.requestsTo("/manifests/").isEmpty());
  }
}

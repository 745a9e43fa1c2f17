package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.FakeRegistry;
import dev.lazypull.testing.MemoryBlobSource;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Uploads against the fake distribution API. */
class RegistryPusherTest {
  @StartStop public final MockWebServer server = new MockWebServer();
  private final FakeRegistry reg = new FakeRegistry();
  private Repository repo;
  private RegistryClient client;
  private ImagePusher pusher;

  @BeforeEach
  void setUp() throws IOException {
    server.setDispatcher(reg);
    repo = new Repository(server.getHostName() + ":" + server.getPort(), "team/app");
    client =
        new RegistryClient(
            RegistryClientTest.testConfig().withUploads(100_000, 64 << 10),
            CredentialStore.anonymous(),
            d -> {});
    pusher = client.pusher();
  }

  private static Descriptor desc(byte[] b) {
    return new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(b), b.length);
  }

  private List<String> methods() {
    return reg.requests.stream()
        .map(
            r ->
                r.getMethod()
                    + " "
                    + r.getUrl()
                        .encodedPath()
                        .replaceAll("sha256:[0-9a-f]{64}", "DIGEST")
                        .replaceAll("[0-9a-f-]{36}", "UUID"))
        .toList();
  }

  @Test
  void smallBlobsGoUpMonolithicallyAndExistingOnesAreSkipped() throws Exception {
    byte[] b = MemoryBlobSource.randomBytes(50_000, 1);
    assertEquals(
        ImagePusher.PushResult.UPLOADED, pusher.pushBlob(repo, desc(b), BlobContent.of(b), null));
    assertArrayEquals(b, reg.blob(repo.name(), Digest.of(b).toString()));
    assertEquals(
        List.of(
            "HEAD /v2/team/app/blobs/DIGEST",
            "POST /v2/team/app/blobs/uploads/",
            "PUT /v2/team/app/blobs/uploads/UUID"),
        methods());
    RecordedRequest put = reg.requests.get(2);
    assertEquals("application/octet-stream", put.getHeaders().get("Content-Type"));
    assertEquals("s0", put.getUrl().queryParameter("_state"), "the Location's own query is kept");
    assertEquals(Digest.of(b).toString(), put.getUrl().queryParameter("digest"));

    assertEquals(
        ImagePusher.PushResult.EXISTED, pusher.pushBlob(repo, desc(b), BlobContent.of(b), null));
    assertEquals(4, reg.requests.size(), "only a HEAD");
  }

  @Test
  void largeBlobsGoUpInChunksFollowingEachLocation() throws Exception {
    byte[] b = MemoryBlobSource.randomBytes(200_000, 2);
    pusher.pushBlob(repo, desc(b), BlobContent.of(b), null);
    assertArrayEquals(b, reg.blob(repo.name(), Digest.of(b).toString()));
    List<RecordedRequest> patches =
        reg.requests.stream().filter(r -> r.getMethod().equals("PATCH")).toList();
    assertEquals(4, patches.size()); // 64 KiB chunks
    assertEquals("0-65535", patches.get(0).getHeaders().get("Content-Range"));
    assertEquals("196608-199999", patches.get(3).getHeaders().get("Content-Range"));
    assertEquals(
        "s65536",
        patches.get(1).getUrl().queryParameter("_state"),
        "each PATCH uses the last Location");
    RecordedRequest put = reg.requests.get(reg.requests.size() - 1);
    assertEquals("PUT", put.getMethod());
    assertEquals(0, put.getBodySize());
  }

  @Test
  void aRefusedMonolithicUploadFallsBackToChunks() throws Exception {
    reg.maxMonolithic = 10_000;
    byte[] b = MemoryBlobSource.randomBytes(80_000, 3);
    assertEquals(
        ImagePusher.PushResult.UPLOADED, pusher.pushBlob(repo, desc(b), BlobContent.of(b), null));
    assertArrayEquals(b, reg.blob(repo.name(), Digest.of(b).toString()));
    assertTrue(methods().stream().anyMatch(m -> m.startsWith("PATCH")), methods().toString());
  }

  @Test
  void crossRepositoryMountsAvoidTheUpload() throws Exception {
    byte[] b = MemoryBlobSource.randomBytes(30_000, 4);
    reg.putBlob("team/base", b);
    assertEquals(
        ImagePusher.PushResult.MOUNTED,
        pusher.pushBlob(repo, desc(b), BlobContent.of(b), "team/base"));
    RecordedRequest post = reg.requests.get(1);
    assertEquals(Digest.of(b).toString(), post.getUrl().queryParameter("mount"));
    assertEquals("team/base", post.getUrl().queryParameter("from"));
    assertTrue(reg.requests.stream().noneMatch(r -> r.getMethod().equals("PUT")));

    // the source lacks it: the 202 session of the mount attempt is used for a normal upload
    byte[] c = MemoryBlobSource.randomBytes(30_000, 5);
    assertEquals(
        ImagePusher.PushResult.UPLOADED,
        pusher.pushBlob(repo, desc(c), BlobContent.of(c), "team/base"));
    assertArrayEquals(c, reg.blob(repo.name(), Digest.of(c).toString()));
  }

  @Test
  void transientFailuresRestartTheWholeUploadOthersAreReported() throws Exception {
    byte[] b = MemoryBlobSource.randomBytes(20_000, 6);
    AtomicInteger posts = new AtomicInteger();
    reg.intercept =
        r ->
            r.getMethod().equals("POST") && posts.getAndIncrement() == 0
                ? FakeRegistry.error(502, "UNAVAILABLE", "proxy hiccup")
                : null;
    ExpectedLogs.warning("HTTP 502 UNAVAILABLE: proxy hiccup); starting the upload again in ");
    pusher.pushBlob(repo, desc(b), BlobContent.of(b), null);
    assertEquals(2, posts.get());

    reg.intercept =
        r ->
            r.getMethod().equals("POST")
                ? FakeRegistry.error(403, "DENIED", "no push access")
                : null;
    byte[] c = MemoryBlobSource.randomBytes(100, 7);
    RegistryException e =
        assertThrows(
            RegistryException.class, () -> pusher.pushBlob(repo, desc(c), BlobContent.of(c), null));
    assertTrue(
        e.getMessage().contains("DENIED") && e.getMessage().contains(Digest.of(c).toString()),
        e.getMessage());
  }

  @Test
  void contentThatDoesNotMatchItsDigestIsRejectedByTheRegistry() {
    byte[] b = MemoryBlobSource.randomBytes(100, 8);
    Descriptor wrong = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(new byte[100]), 100);
    RegistryException e =
        assertThrows(
            RegistryException.class, () -> pusher.pushBlob(repo, wrong, BlobContent.of(b), null));
    assertTrue(e.getMessage().contains("DIGEST_INVALID"), e.getMessage());
  }

  @Test
  void manifestsArePutByTagOrByDigest() throws Exception {
    byte[] m = "{\"schemaVersion\":2,\"layers\":[]}".getBytes();
    Digest d = pusher.pushManifest(repo, m, MediaTypes.OCI_MANIFEST, List.of("v1", "latest"));
    assertEquals(Digest.of(m), d);
    assertArrayEquals(m, reg.manifests.get("team/app:v1").bytes());
    assertArrayEquals(m, reg.manifests.get("team/app:latest").bytes());
    assertEquals(MediaTypes.OCI_MANIFEST, reg.requests.get(0).getHeaders().get("Content-Type"));
    pusher.pushManifest(repo, m, MediaTypes.OCI_MANIFEST, List.of());
    assertTrue(reg.requests.get(2).getUrl().encodedPath().endsWith("/manifests/" + d));

    reg.intercept =
        r ->
            new MockResponse.Builder()
                .code(201)
                .addHeader("Docker-Content-Digest", Digest.of(new byte[1]).toString())
                .build();
    RegistryException e =
        assertThrows(
            RegistryException.class,
            () -> pusher.pushManifest(repo, m, MediaTypes.OCI_MANIFEST, List.of("v2")));
    assertTrue(e.getMessage().contains("stored digest"), e.getMessage());
  }
}

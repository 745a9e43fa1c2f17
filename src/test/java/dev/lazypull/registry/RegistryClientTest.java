package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageIndex;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.FakeRegistry;
import dev.lazypull.testing.MemoryBlobSource;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.SocketEffect;
import mockwebserver3.junit5.StartStop;
import okio.Buffer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The pull side against MockWebServer: manifests, indexes, ranges and the ways registries get them
 * wrong.
 */
class RegistryClientTest {
  @StartStop public final MockWebServer server = new MockWebServer();
  @StartStop public final MockWebServer storage = new MockWebServer();

  private final FakeRegistry reg = new FakeRegistry();
  private final List<Duration> sleeps = new ArrayList<>();
  private RegistryClient client;
  private Repository repo;
  private String host;

  static RegistryConfig testConfig() {
    return RegistryConfig.defaults()
        .withPlainHttp(true)
        .withRetry(
            new RetryPolicy(
                3, Duration.ofMillis(10), Duration.ofMillis(100), Duration.ofSeconds(30)));
  }

  @BeforeEach
  void setUp() throws IOException {
    server.setDispatcher(reg);
    client = new RegistryClient(testConfig(), CredentialStore.anonymous(), sleeps::add);
    host = server.getHostName() + ":" + server.getPort();
    repo = new Repository(host, "test/app");
  }

  private Descriptor blob(byte[] data) {
    reg.putBlob(repo.name(), data);
    return new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(data), data.length);
  }

  private static byte[] readAll(ReadableByteChannel ch) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (ch) {
      Channels.newInputStream(ch).transferTo(out);
    }
    return out.toByteArray();
  }

  private byte[] range(Descriptor d, long off, long len) throws IOException {
    return readAll(client.openBlob(repo, d, off, len));
  }

  private RegistryImageSource source(String ref) {
    return new RegistryImageSource(
        client, (ImageReference.Registry) ImageReference.parse(host + "/" + ref));
  }

  /**
   * A lazypull image (bootstrap + one blob) in the fake registry under test/app:v1; returns its
   * manifest bytes.
   */
  private byte[] pushImage(String tag) {
    byte[] boot = MemoryBlobSource.randomBytes(8192, 1);
    byte[] data = MemoryBlobSource.randomBytes(100_000, 2);
    reg.putBlob(repo.name(), boot);
    Descriptor b = new Descriptor(MediaTypes.EROFS_BOOTSTRAP, Digest.of(boot), boot.length);
    Descriptor d = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(data), data.length);
    reg.putBlob(repo.name(), data);
    byte[] config = LazyManifests.minimalConfig(List.of(b, d));
    Descriptor c = new Descriptor(MediaTypes.OCI_CONFIG, Digest.of(config), config.length);
    reg.putBlob(repo.name(), config);
    byte[] manifest = Json.write(LazyManifests.manifest(c, b, List.of(d), Map.of()));
    reg.putManifest(repo.name(), tag, manifest, MediaTypes.OCI_MANIFEST);
    return manifest;
  }

  // ---- manifests
  // -----------------------------------------------------------------------------------------

  @Test
  void manifestByTagSendsAnAcceptHeaderListingEveryTypeAndByDigestIsVerified() throws Exception {
    byte[] manifest = pushImage("v1");
    LazyImage img = source("test/app:v1").resolve();
    assertEquals(Digest.of(manifest), img.manifestDigest());
    assertEquals(1, img.blobs().size());
    String accept = reg.requestsTo("/manifests/v1").get(0).getHeaders().get("Accept");
    for (String t :
        List.of(
            MediaTypes.OCI_MANIFEST,
            MediaTypes.OCI_INDEX,
            MediaTypes.DOCKER_MANIFEST,
            MediaTypes.DOCKER_MANIFEST_LIST)) {
      assertTrue(accept.contains(t), accept);
    }
    assertEquals(
        img.manifestDigest(), source("test/app@" + Digest.of(manifest)).resolve().manifestDigest());

    // a registry (or mirror) serving other bytes for a digest is caught
    Digest wanted = Digest.of(manifest);
    byte[] other = Arrays.copyOf(manifest, manifest.length);
    other[other.length - 2] = ' ';
    reg.manifests.put(
        repo.name() + ":" + wanted,
        new FakeRegistry.StoredManifest(other, MediaTypes.OCI_MANIFEST));
    IOException e = assertThrows(IOException.class, () -> source("test/app@" + wanted).resolve());
    assertTrue(
        e.getMessage().contains(host)
            && e.getMessage().contains("test/app")
            && e.getMessage().contains(wanted.toString()),
        e.getMessage());
  }

  @Test
  void aTagWhoseDockerContentDigestDisagreesIsRefused() {
    pushImage("v1");
    reg.intercept =
        r ->
            r.getUrl().encodedPath().endsWith("/manifests/v1")
                ? new MockResponse.Builder()
                    .code(200)
                    .addHeader("Content-Type", MediaTypes.OCI_MANIFEST)
                    .addHeader("Docker-Content-Digest", Digest.of(new byte[1]).toString())
                    .body(new Buffer().write(reg.manifests.get("test/app:v1").bytes()))
                    .build()
                : null;
    IOException e = assertThrows(IOException.class, () -> source("test/app:v1").resolve());
    assertTrue(e.getMessage().contains("Docker-Content-Digest"), e.getMessage());
  }

  @Test
  void anIndexIsResolvedByPlatformAndItsEntryDigestChecked() throws Exception {
    byte[] manifest = pushImage("amd");
    Digest amd = Digest.of(manifest);
    byte[] armManifest =
        Json.write(
            Map.of("schemaVersion", 2, "mediaType", MediaTypes.OCI_MANIFEST, "layers", List.of()));
    Digest arm = reg.putManifest(repo.name(), null, armManifest, MediaTypes.OCI_MANIFEST);
    ImageIndex index =
        new ImageIndex(
            2,
            MediaTypes.OCI_INDEX,
            List.of(
                new Descriptor(
                    MediaTypes.OCI_MANIFEST,
                    arm,
                    armManifest.length,
                    Map.of(),
                    new Descriptor.Platform("arm64", "linux", "v8")),
                new Descriptor(
                    MediaTypes.OCI_MANIFEST,
                    amd,
                    manifest.length,
                    Map.of(),
                    new Descriptor.Platform("amd64", "linux", null))),
            Map.of());
    reg.putManifest(repo.name(), "multi", Json.write(index), MediaTypes.OCI_INDEX);
    assertEquals(amd, source("test/app:multi").resolve().manifestDigest());

    RegistryClient arm64 =
        new RegistryClient(
            testConfig().withPlatform("linux/arm64"), CredentialStore.anonymous(), sleeps::add);
    RegistryImageSource s =
        new RegistryImageSource(
            arm64, (ImageReference.Registry) ImageReference.parse(host + "/test/app:multi"));
    assertEquals(arm, s.resolveManifest().digest());
    InvalidImageException noLayers = assertThrows(InvalidImageException.class, s::resolve);
    assertTrue(noLayers.getMessage().contains("no layers"), noLayers.getMessage());

    RegistryClient s390 =
        new RegistryClient(
            testConfig().withPlatform("linux/s390x"), CredentialStore.anonymous(), sleeps::add);
    IOException e =
        assertThrows(
            IOException.class,
            () ->
                new RegistryImageSource(
                        s390,
                        (ImageReference.Registry) ImageReference.parse(host + "/test/app:multi"))
                    .resolve());
    assertTrue(
        e.getMessage().contains("linux/s390x") && e.getMessage().contains("linux/arm64/v8"),
        e.getMessage());
  }

  @Test
  void malformedUnknownAndOversizedManifestsGetClearErrors() {
    reg.putManifest(
        repo.name(),
        "bad",
        "{\"schemaVersion\": 2, \"layers\": [".getBytes(),
        MediaTypes.OCI_MANIFEST);
    IOException e = assertThrows(IOException.class, () -> source("test/app:bad").resolve());
    assertTrue(
        e.getMessage().contains("malformed JSON")
            && e.getMessage().contains("test/app")
            && e.getMessage().contains("manifest bad"),
        e.getMessage());

    reg.putManifest(
        repo.name(),
        "v1schema",
        "{\"schemaVersion\":1}".getBytes(),
        "application/vnd.docker.distribution.manifest.v1+prettyjws");
    e = assertThrows(IOException.class, () -> source("test/app:v1schema").resolve());
    assertTrue(e.getMessage().contains("unsupported manifest media type"), e.getMessage());

    reg.intercept =
        r ->
            r.getUrl().encodedPath().endsWith("/manifests/huge")
                ? new MockResponse.Builder()
                    .code(200)
                    .addHeader("Content-Type", MediaTypes.OCI_MANIFEST)
                    .body(new Buffer().write(new byte[5 << 20]))
                    .build()
                : null;
    e = assertThrows(IOException.class, () -> source("test/app:huge").resolve());
    assertTrue(e.getMessage().contains("limit"), e.getMessage());

    e = assertThrows(IOException.class, () -> source("test/app:missing").resolve());
    assertTrue(
        e.getMessage().contains("404") && e.getMessage().contains("MANIFEST_UNKNOWN"),
        e.getMessage());
  }

  @Test
  void absurdLayerSizesAndForeignLayerTypesAreRefused() {
    byte[] m =
        ("{\"schemaVersion\":2,\"mediaType\":\""
                + MediaTypes.OCI_MANIFEST
                + "\",\"layers\":[{\"mediaType\":\""
                + MediaTypes.EROFS_BOOTSTRAP
                + "\",\"digest\":\""
                + Digest.of(new byte[1])
                + "\",\"size\":"
                + (1L << 50)
                + "}]}")
            .getBytes();
    reg.putManifest(repo.name(), "absurd", m, MediaTypes.OCI_MANIFEST);
    IOException e = assertThrows(IOException.class, () -> source("test/app:absurd").resolve());
    assertTrue(e.getMessage().contains("size"), e.getMessage());
    byte[] tar =
        ("{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\""
                + MediaTypes.OCI_LAYER_TAR_GZIP
                + "\",\"digest\":\""
                + Digest.of(new byte[1])
                + "\",\"size\":1}]}")
            .getBytes();
    reg.putManifest(repo.name(), "tar", tar, "application/json");
    e = assertThrows(IOException.class, () -> source("test/app:tar").resolve());
    assertTrue(e.getMessage().contains("not a lazypull image"), e.getMessage());
  }

  // ---- ranges
  // --------------------------------------------------------------------------------------------

  @Test
  void rangesAre206WithTheExactContentRange() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(300_000, 3);
    Descriptor d = blob(data);
    assertArrayEquals(Arrays.copyOfRange(data, 1000, 71000), range(d, 1000, 70_000));
    assertArrayEquals(Arrays.copyOfRange(data, 299_999, 300_000), range(d, 299_999, 1));
    RecordedRequest r = reg.requestsTo("/blobs/").get(0);
    assertEquals("bytes=1000-70999", r.getHeaders().get("Range"));
    assertEquals(0, range(d, 5, 0).length);
  }

  @Test
  void neverAsksPastTheBlobEnd() {
    Descriptor d = blob(new byte[1000]);
    assertThrows(IOException.class, () -> client.openBlob(repo, d, 900, 101));
    assertThrows(IOException.class, () -> client.openBlob(repo, d, 1000, 1));
    assertThrows(IOException.class, () -> client.openBlob(repo, d, -1, 1));
    assertTrue(reg.requests.isEmpty(), "nothing was sent");
  }

  @Test
  void aWrongContentRangeOrLengthIsRefusedBeforeAnyByteIsUsed() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(10_000, 4);
    Descriptor d = blob(data);
    reg.intercept =
        r ->
            new MockResponse.Builder()
                .code(206)
                .addHeader("Content-Range", "bytes 0-99/10000")
                .body(FakeRegistry.buffer(data, 0, 100))
                .build();
    IOException e = assertThrows(IOException.class, () -> client.openBlob(repo, d, 100, 100));
    assertTrue(
        e.getMessage().contains("Content-Range")
            && e.getMessage().contains(d.digest().toString())
            && e.getMessage().contains("test/app"),
        e.getMessage());

    reg.intercept =
        r ->
            new MockResponse.Builder()
                .code(206)
                .addHeader("Content-Range", "bytes 100-199/99999")
                .body(FakeRegistry.buffer(data, 100, 100))
                .build();
    e = assertThrows(IOException.class, () -> client.openBlob(repo, d, 100, 100));
    assertTrue(e.getMessage().contains("Content-Range"), e.getMessage());

    reg.intercept =
        r ->
            new MockResponse.Builder()
                .code(206)
                .addHeader("Content-Range", "bytes 100-199/10000")
                .body(FakeRegistry.buffer(data, 100, 150))
                .build();
    e = assertThrows(IOException.class, () -> client.openBlob(repo, d, 100, 100));
    assertTrue(e.getMessage().contains("Content-Length"), e.getMessage());

    // a chunked body that goes on past the range
    reg.intercept =
        r ->
            new MockResponse.Builder()
                .code(206)
                .addHeader("Content-Range", "bytes 100-199/10000")
                .chunkedBody(FakeRegistry.buffer(data, 100, 150), 64)
                .build();
    e = assertThrows(IOException.class, () -> range(d, 100, 100));
    assertTrue(e.getMessage().contains("longer"), e.getMessage());
  }

  @Test
  void a200MeansRangeWasIgnoredSoTheClientSkipsForwardWithinTheBound() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(200_000, 5);
    Descriptor d = blob(data);
    reg.ignoreRange = true;
    // each client warns once; the tight one names its smaller bound (declared first: a record
    // counts once)
    ExpectedLogs.warning(
        "sends whole blobs (HTTP 200); reading forward to each offset, at most 100000 bytes");
    ExpectedLogs.warning("ignores Range requests and sends whole blobs (HTTP 200)");
    assertArrayEquals(Arrays.copyOfRange(data, 150_000, 160_000), range(d, 150_000, 10_000));
    assertArrayEquals(Arrays.copyOfRange(data, 0, 10), range(d, 0, 10));

    RegistryClient tight =
        new RegistryClient(
            testConfig().withMaxSkip(100_000), CredentialStore.anonymous(), sleeps::add);
    IOException e = assertThrows(IOException.class, () -> tight.openBlob(repo, d, 150_000, 10));
    assertTrue(
        e.getMessage().contains("ignored the Range") && e.getMessage().contains("max_skip"),
        e.getMessage());
    assertArrayEquals(
        Arrays.copyOfRange(data, 90_000, 90_010), readAll(tight.openBlob(repo, d, 90_000, 10)));

    reg.intercept =
        r -> new MockResponse.Builder().code(200).body(FakeRegistry.buffer(data, 0, 1000)).build();
    e = assertThrows(IOException.class, () -> client.openBlob(repo, d, 0, 10));
    assertTrue(e.getMessage().contains("1000 bytes for a blob of 200000"), e.getMessage());
  }

  @Test
  void aBodyCutShortIsResumedFromWhereItStopped() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(400_000, 6);
    Descriptor d = blob(data);
    AtomicInteger calls = new AtomicInteger();
    reg.intercept =
        r -> {
          if (calls.getAndIncrement() > 0) {
            return null;
          }
          // promises 300000 bytes, sends 100000, then the connection drops
          return new MockResponse.Builder()
              .code(206)
              .addHeader("Content-Range", "bytes 50000-349999/400000")
              .body(FakeRegistry.buffer(data, 50_000, 100_000))
              .setHeader("Content-Length", 300_000)
              .onResponseEnd(SocketEffect.ShutdownConnection.INSTANCE)
              .build();
        };
    assertArrayEquals(Arrays.copyOfRange(data, 50_000, 350_000), range(d, 50_000, 300_000));
    List<RecordedRequest> gets = reg.requestsTo("/blobs/");
    assertEquals(2, gets.size());
    String resumed = gets.get(1).getHeaders().get("Range");
    assertTrue(
        resumed.startsWith("bytes=")
            && resumed.endsWith("-349999")
            && !resumed.equals("bytes=50000-349999"),
        resumed);
  }

  @Test
  void aBodyThatKeepsEndingEarlyFailsAfterBoundedResumes() {
    byte[] data = MemoryBlobSource.randomBytes(10_000, 7);
    Descriptor d = blob(data);
    reg.intercept =
        r -> {
          String range = r.getHeaders().get("Range");
          long first = Long.parseLong(range.substring(6, range.indexOf('-')));
          return new MockResponse.Builder()
              .code(206)
              .addHeader("Content-Range", "bytes " + first + "-9999/10000")
              .body(FakeRegistry.buffer(data, (int) first, 10))
              .setHeader("Content-Length", 10_000 - first)
              .onResponseEnd(SocketEffect.ShutdownConnection.INSTANCE)
              .build();
        };
    assertThrows(IOException.class, () -> range(d, 0, 10_000));
    assertEquals(1 + testConfig().retry().retries(), reg.requestsTo("/blobs/").size());
  }

  @Test
  void retriesHonourRetryAfterForTooManyRequestsAnd5xx() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(1000, 8);
    Descriptor d = blob(data);
    AtomicInteger calls = new AtomicInteger();
    reg.intercept =
        r ->
            switch (calls.getAndIncrement()) {
              case 0 -> new MockResponse.Builder().code(429).addHeader("Retry-After", "2").build();
              case 1 -> new MockResponse.Builder().code(503).build();
              default -> null;
            };
    long retriesBefore = client.stats().retries.sum();
    assertArrayEquals(Arrays.copyOfRange(data, 10, 20), range(d, 10, 10));
    assertEquals(Duration.ofSeconds(2), sleeps.get(0));
    assertEquals(2, sleeps.size());
    assertEquals(
        2, client.stats().retries.sum() - retriesBefore, "both retries counted for metrics");
    assertTrue(sleeps.get(1).toMillis() <= 20, "exponential backoff from 10 ms: " + sleeps.get(1));

    // a Retry-After longer than we would block a reader for is reported, not waited out
    calls.set(0);
    sleeps.clear();
    reg.intercept =
        r ->
            new MockResponse.Builder()
                .code(429)
                .addHeader("Retry-After", "3600")
                .body("{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"slow down\"}]}")
                .build();
    RegistryException e =
        assertThrows(RegistryException.class, () -> client.openBlob(repo, d, 0, 10));
    assertEquals(429, e.status());
    assertTrue(
        e.getMessage().contains("TOOMANYREQUESTS") && e.getMessage().contains("3600"),
        e.getMessage());
    assertTrue(sleeps.isEmpty());

    // persistent 500: retries then the status, naming the blob
    reg.intercept = r -> FakeRegistry.error(500, "UNKNOWN", "boom");
    e = assertThrows(RegistryException.class, () -> client.openBlob(repo, d, 0, 10));
    assertEquals(500, e.status());
    assertEquals(3, sleeps.size());
  }

  @Test
  void connectionErrorsAreRetried() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(1000, 9);
    Descriptor d = blob(data);
    AtomicInteger calls = new AtomicInteger();
    reg.intercept =
        r ->
            calls.getAndIncrement() == 0
                ? new MockResponse.Builder()
                    .onResponseStart(SocketEffect.ShutdownConnection.INSTANCE)
                    .build()
                : null;
    assertArrayEquals(Arrays.copyOfRange(data, 0, 100), range(d, 0, 100));
    assertEquals(1, sleeps.size());
  }

  @Test
  void notFoundIsAClearErrorNamingRegistryRepositoryAndDigest() {
    Descriptor d = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(new byte[3]), 3);
    RegistryException e =
        assertThrows(RegistryException.class, () -> client.openBlob(repo, d, 0, 3));
    assertTrue(
        e.getMessage().contains("registry http://" + host)
            && e.getMessage().contains("repository test/app")
            && e.getMessage().contains(d.digest().toString())
            && e.getMessage().contains("BLOB_UNKNOWN"),
        e.getMessage());
    assertEquals(404, e.status());
  }

  // ---- redirects
  // -----------------------------------------------------------------------------------------

  @Test
  void redirectsAcrossHostsKeepRangeDropAuthorizationAndAreCachedUntilTheyFail() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(50_000, 10);
    Descriptor d = blob(data);
    reg.requiredAuthorization = Credentials.basic("u", "p").basicHeader();
    client = new RegistryClient(testConfig(), h -> Credentials.basic("u", "p"), sleeps::add);
    FakeRegistry store = new FakeRegistry();
    store.putBlob("s3", data);
    AtomicInteger storageCalls = new AtomicInteger();
    store.intercept =
        r ->
            storageCalls.incrementAndGet() == 3
                ? new MockResponse.Builder().code(403).build()
                : null;
    storage.setDispatcher(store);
    reg.intercept =
        r ->
            r.getUrl().encodedPath().contains("/blobs/")
                    && r.getMethod().equals("GET")
                    && reg.requiredAuthorization.equals(r.getHeaders().get("Authorization"))
                ? new MockResponse.Builder()
                    .code(307)
                    .addHeader(
                        "Location",
                        storage
                            .url("/v2/s3/blobs/" + d.digest() + "?X-Amz-Signature=abc")
                            .toString())
                    .build()
                : null;

    assertArrayEquals(Arrays.copyOfRange(data, 100, 200), range(d, 100, 100));
    RecordedRequest atStorage = store.requests.get(0);
    assertEquals("bytes=100-199", atStorage.getHeaders().get("Range"));
    assertNull(atStorage.getHeaders().get("Authorization"), "no credentials to another host");
    assertEquals("abc", atStorage.getUrl().queryParameter("X-Amz-Signature"));
    int viaRegistry = reg.requestsTo("/blobs/").size();

    // cached: the next range goes straight to storage
    assertArrayEquals(Arrays.copyOfRange(data, 1000, 3000), range(d, 1000, 2000));
    assertEquals(viaRegistry, reg.requestsTo("/blobs/").size());
    assertEquals(2, store.requests.size());

    // the presigned URL "expired" (403): dropped, and the read goes through the registry again,
    // once
    assertArrayEquals(Arrays.copyOfRange(data, 5000, 6000), range(d, 5000, 1000));
    assertEquals(viaRegistry + 1, reg.requestsTo("/blobs/").size());
    assertEquals(4, store.requests.size());
  }

  @Test
  void relativeRedirectsOnTheSameHostKeepAuthorizationAndLoopsAreBounded() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(5000, 11);
    Descriptor d = blob(data);
    reg.putBlob("other/place", data);
    reg.requiredAuthorization = Credentials.basic("u", "p").basicHeader();
    client = new RegistryClient(testConfig(), h -> Credentials.basic("u", "p"), sleeps::add);
    reg.intercept =
        r ->
            r.getUrl().encodedPath().startsWith("/v2/test/app/blobs/")
                ? new MockResponse.Builder()
                    .code(302)
                    .addHeader("Location", "../../../other/place/blobs/" + d.digest())
                    .build()
                : null;
    assertArrayEquals(Arrays.copyOfRange(data, 0, 10), range(d, 0, 10));

    reg.intercept =
        r -> new MockResponse.Builder().code(307).addHeader("Location", "/v2/loop").build();
    IOException e = assertThrows(IOException.class, () -> client.openBlob(repo, d, 0, 10));
    assertTrue(e.getMessage().contains("redirects"), e.getMessage());
    reg.intercept = r -> new MockResponse.Builder().code(307).build();
    e = assertThrows(IOException.class, () -> client.openBlob(repo, d, 0, 10));
    assertTrue(e.getMessage().contains("Location"), e.getMessage());
  }

  // ---- whole blobs
  // ---------------------------------------------------------------------------------------

  @Test
  void wholeBlobDownloadsAreVerified() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(123_456, 12);
    Descriptor d = blob(data);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    client.downloadBlob(repo, d, Channels.newChannel(out));
    assertArrayEquals(data, out.toByteArray());

    byte[] evil = data.clone();
    evil[777] ^= 1;
    reg.blobs.get(repo.name()).put(d.digest().toString(), evil);
    IOException e =
        assertThrows(
            IOException.class,
            () -> client.downloadBlob(repo, d, Channels.newChannel(new ByteArrayOutputStream())));
    assertTrue(
        e.getMessage().contains("hashes to") && e.getMessage().contains(d.digest().toString()),
        e.getMessage());
  }
}

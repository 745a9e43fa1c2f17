package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.fetch.ChunkFetcher;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.fetch.FetchStats;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.FakeRegistry;
import dev.lazypull.testing.MemoryBlobSource;
import dev.lazypull.testing.TestFetch;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.SocketEffect;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Mirrors are tried in order before the origin; failing ones cool down, empty ones do not. */
class MirrorTest {
  @StartStop public final MockWebServer origin = new MockWebServer();
  @StartStop public final MockWebServer mirror1 = new MockWebServer();
  @StartStop public final MockWebServer mirror2 = new MockWebServer();

  private final FakeRegistry o = new FakeRegistry();
  private final FakeRegistry m1 = new FakeRegistry();
  private final FakeRegistry m2 = new FakeRegistry();
  private final AtomicLong now = new AtomicLong();
  private RegistryClient client;
  private Repository repo;
  private Descriptor blob;
  private byte[] data;

  @BeforeEach
  void setUp() throws IOException {
    origin.setDispatcher(o);
    mirror1.setDispatcher(m1);
    mirror2.setDispatcher(m2);
    String host = origin.getHostName() + ":" + origin.getPort();
    repo = new Repository(host, "team/app");
    data = MemoryBlobSource.randomBytes(10_000, 3);
    blob = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(data), data.length);
    o.putBlob(repo.name(), data);
    RegistryConfig cfg =
        RegistryClientTest.testConfig()
            .withHost(
                new RegistryConfig.Host(
                    host,
                    true,
                    List.of(
                        RegistryConfig.parseMirror(mirror1.url("/").toString()),
                        RegistryConfig.parseMirror(mirror2.url("/").toString()))));
    client = new RegistryClient(cfg, CredentialStore.anonymous(), d -> {}, now::get);
  }

  private byte[] read() throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (ReadableByteChannel ch = client.openBlob(repo, blob, 10, 100)) {
      Channels.newInputStream(ch).transferTo(out);
    }
    return out.toByteArray();
  }

  @Test
  void theFirstMirrorHoldingTheBlobServesItAndTheOriginIsNotAsked() throws Exception {
    m1.putBlob(repo.name(), data);
    assertArrayEquals(Arrays.copyOfRange(data, 10, 110), read());
    assertEquals(1, m1.requests.size());
    assertEquals(0, m2.requests.size());
    assertEquals(0, o.requests.size());
  }

  @Test
  void aMissingBlobFallsThroughWithoutCoolingTheMirror() throws Exception {
    m2.putBlob(repo.name(), data);
    ExpectedLogs.warning(
        "HTTP 404 BLOB_UNKNOWN: blob unknown to registry; trying the next endpoint");
    assertArrayEquals(Arrays.copyOfRange(data, 10, 110), read());
    assertEquals(1, m1.requests.size());
    assertEquals(1, m2.requests.size());
    read();
    assertEquals(2, m1.requests.size(), "a 404 does not cool a mirror down");
  }

  @Test
  void failingMirrorsFallBackToTheOriginAndCoolDown() throws Exception {
    m1.intercept = r -> FakeRegistry.error(503, "UNAVAILABLE", "down");
    m2.intercept =
        r ->
            new MockResponse.Builder()
                .onResponseStart(SocketEffect.ShutdownConnection.INSTANCE)
                .build();
    ExpectedLogs.warning("HTTP 503 UNAVAILABLE: down; skipping this mirror for 30 s");
    ExpectedLogs.warning("; skipping this mirror for 30 s"); // the connection mirror 2 drops
    assertArrayEquals(Arrays.copyOfRange(data, 10, 110), read());
    assertEquals(1, m1.requests.size(), "mirrors are not retried: the next endpoint is the retry");
    assertTrue(m2.requests.size() <= 1);
    assertEquals(1, o.requests.size());

    int m2Before = m2.requests.size();
    read();
    read();
    assertEquals(1, m1.requests.size(), "cooling down");
    assertEquals(m2Before, m2.requests.size(), "cooling down");
    assertEquals(3, o.requests.size());

    now.addAndGet(Duration.ofSeconds(31).toNanos());
    m1.intercept = null;
    m1.putBlob(repo.name(), data);
    read();
    assertEquals(2, m1.requests.size(), "tried again after the cool-down");
    assertEquals(3, o.requests.size());
  }

  @Test
  void whenEverythingFailsTheOriginsErrorIsReported() {
    m1.intercept = r -> FakeRegistry.error(500, "X", "mirror broken");
    m2.intercept = r -> FakeRegistry.error(500, "X", "mirror broken");
    o.intercept = r -> FakeRegistry.error(403, "DENIED", "origin says no");
    ExpectedLogs.warning("HTTP 500 X: mirror broken; skipping this mirror for 30 s");
    RegistryException e = Assertions.assertThrows(RegistryException.class, this::read);
    assertEquals(403, e.status());
    assertTrue(
        e.getMessage().contains("origin says no") && e.getMessage().contains(origin.getHostName()),
        e.getMessage());
  }

  @Test
  void aMirrorServingCorruptChunksIsOverruledByTheOrigin() throws Exception {
    // 3 chunks of 64 KiB with a digest table; mirror 1 holds a copy with one byte flipped in chunk
    // 1.
    byte[] good = MemoryBlobSource.randomBytes(3 * 65536, 11);
    byte[] bad = good.clone();
    bad[65536 + 77] ^= 1;
    Descriptor b = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(good), good.length);
    o.putBlob(repo.name(), good);
    m1.blobs
        .computeIfAbsent(repo.name(), k -> new ConcurrentHashMap<>())
        .put(b.digest().toString(), bad);
    ChunkDigestTable.Builder tb = new ChunkDigestTable.Builder();
    for (int i = 0; i < 3; i++) {
      tb.add(
          65536,
          MessageDigest.getInstance("SHA-256")
              .digest(Arrays.copyOfRange(good, i * 65536, (i + 1) * 65536)));
    }
    RegistryBlobSource source = new RegistryBlobSource(client, repo);
    Descriptor table =
        new Descriptor(
            MediaTypes.CHUNK_DIGESTS, Digest.of(tb.build().encode()), tb.build().encode().length);
    o.putBlob(repo.name(), tb.build().encode());
    m1.putBlob(
        repo.name(),
        tb.build().encode()); // the mirror has the table right: only the blob is corrupt
    TestFetch.MemorySink sink = new TestFetch.MemorySink(good.length);
    FetchStats stats;
    try (FetchCore core = TestFetch.core(65536, 3 * 65536)) {
      stats = core.stats();
      ChunkFetcher f = TestFetch.fetcher(core, TestFetch.ref(b, table), source, sink);
      assertTrue(f.verifying());
      ExpectedLogs.severe("integrity: blob " + b.digest() + " bytes 65536+65536 from registry ");
      ExpectedLogs.warning("bytes 65536+65536 from registry ");
      f.ensure(0, good.length).get(10, TimeUnit.SECONDS);
    }
    assertArrayEquals(
        good,
        Arrays.copyOf(sink.file, good.length),
        "only verified bytes, from the origin, were written");
    assertEquals(1, stats.integrityMismatchesMirror.sum());
    assertEquals(0, stats.integrityMismatchesOrigin.sum());
    assertTrue(
        o.requests.stream().anyMatch(r -> r.getTarget().contains("/blobs/" + b.digest())),
        "the origin served the retry");
  }

  @Test
  void aWholeBlobDownloadFromACorruptMirrorIsRedoneFromTheOrigin(@TempDir Path tmp)
      throws Exception {
    byte[] bad = data.clone();
    bad[5000] ^= 1;
    m1.blobs
        .computeIfAbsent(repo.name(), k -> new ConcurrentHashMap<>())
        .put(blob.digest().toString(), bad);
    Path file = tmp.resolve("layer");
    ExpectedLogs.warning(
        "blob "
            + blob.digest()
            + ": a mirror's copy hashes to "
            + Digest.of(bad)
            + "; downloading it from the registry itself");
    try (FileChannel out =
        FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      client.downloadBlob(repo, blob, out);
    }
    assertArrayEquals(
        data, Files.readAllBytes(file), "the origin's bytes, nothing of the mirror's");
    assertEquals(1, m1.requests.size());
    assertTrue(
        o.requests.stream().anyMatch(r -> r.getTarget().contains("/blobs/")),
        "the origin served it");

    // Into something that cannot be rewound: a clear error, as before.
    RegistryException e =
        assertThrows(
            RegistryException.class,
            () ->
                client.downloadBlob(repo, blob, Channels.newChannel(new ByteArrayOutputStream())));
    assertTrue(e.getMessage().contains("hashes to"), e.getMessage());
  }
}

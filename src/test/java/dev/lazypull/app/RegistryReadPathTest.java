package dev.lazypull.app;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.fetch.FetchStats;
import dev.lazypull.frontend.RequestStats;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.registry.CredentialStore;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import dev.lazypull.registry.RegistryImageSource;
import dev.lazypull.registry.RetryPolicy;
import dev.lazypull.sys.Posix;
import dev.lazypull.testing.Await;
import dev.lazypull.testing.DaemonHarness;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.FakeKernel;
import dev.lazypull.testing.FakeKernel.FakeObject;
import dev.lazypull.testing.FakeKernel.Outcome;
import dev.lazypull.testing.FakeRegistry;
import dev.lazypull.testing.MemoryBlobSource;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.SocketEffect;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The daemon serving READs from a registry (MockWebServer) through the fake kernel: bytes land in
 * the backing file only when a chunk arrived whole; bad responses become EIO; sequential readers
 * get read-ahead.
 */
class RegistryReadPathTest {
  private static final int CHUNK = 64 << 10;
  @StartStop public final MockWebServer server = new MockWebServer();
  @TempDir Path tmp;

  private final FakeRegistry reg = new FakeRegistry();
  private DaemonHarness harness;
  private RequestStats stats;
  private FetchStats fetchStats;
  private FakeKernel kernel;
  private byte[] blob;
  private Descriptor blobDesc;

  private FakeObject start(long readAhead) throws Exception {
    return start(readAhead, 40);
  }

  private FakeObject start(long readAhead, int chunks) throws Exception {
    server.setDispatcher(reg);
    String host = server.getHostName() + ":" + server.getPort();
    byte[] boot = MemoryBlobSource.randomBytes(8192, 1);
    blob = MemoryBlobSource.randomBytes(chunks * CHUNK + 1234, 2);
    reg.putBlob("test/app", boot);
    reg.putBlob("test/app", blob);
    Descriptor bootDesc = new Descriptor(MediaTypes.EROFS_BOOTSTRAP, Digest.of(boot), boot.length);
    blobDesc = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(blob), blob.length);
    RegistryClient client =
        new RegistryClient(
            RegistryConfig.defaults()
                .withPlainHttp(true)
                .withRetry(
                    new RetryPolicy(
                        1, Duration.ofMillis(1), Duration.ofMillis(5), Duration.ofSeconds(1))),
            CredentialStore.anonymous(),
            d -> {});
    ImageSources sources = new ImageSources(ref -> new RegistryImageSource(client, ref));
    Catalog catalog = Catalog.load(tmp.resolve("state"));
    catalog.register(
        new ImageRecord(
            "img",
            null,
            host + "/test/app:v1",
            Digest.of(new byte[] {1}),
            bootDesc,
            List.of(blobDesc),
            List.of(blobDesc.digest().hex()),
            false),
        false);
    harness =
        DaemonHarness.in(tmp)
            .sources(sources)
            .config(c -> c.fetch(f -> f.withMergeLimit(4 * CHUNK).withReadAhead(readAhead)))
            .start();
    kernel = harness.kernel;
    stats = harness.stats();
    fetchStats = harness.fetchStats();
    FakeObject data = kernel.open("erofs,img", blobDesc.digest().hex());
    assertEquals(blob.length, data.copen.get(5, TimeUnit.SECONDS));
    return data;
  }

  @AfterEach
  void stop() {
    if (harness != null) {
      harness.close();
    }
  }

  private List<RecordedRequest> blobGets() {
    return reg.requestsTo("/blobs/" + blobDesc.digest());
  }

  @Test
  void readsAreServedFromTheRegistryWithChunkAlignedRanges() throws Exception {
    FakeObject data = start(0);
    assertEquals(Outcome.DATA, kernel.read(data, 3 * CHUNK + 4096, 8192).get(5, TimeUnit.SECONDS));
    ExpectedLogs.warning(
        "READ " + 39 * CHUNK + "+" + 2 * CHUNK + " goes past the blob's " + blob.length + " bytes");
    assertEquals(Outcome.DATA, kernel.read(data, 39 * CHUNK, 2 * CHUNK).get(5, TimeUnit.SECONDS));
    byte[] file = Files.readAllBytes(data.file);
    assertArrayEquals(
        Arrays.copyOfRange(blob, 3 * CHUNK, 4 * CHUNK),
        Arrays.copyOfRange(file, 3 * CHUNK, 4 * CHUNK));
    assertArrayEquals(
        Arrays.copyOfRange(blob, 39 * CHUNK, blob.length),
        Arrays.copyOfRange(file, 39 * CHUNK, blob.length));
    assertEquals(
        List.of(
            "bytes=" + 3 * CHUNK + "-" + (4 * CHUNK - 1),
            "bytes=" + 39 * CHUNK + "-" + (blob.length - 1)),
        blobGets().stream().map(r -> r.getHeaders().get("Range")).toList());
    assertEquals(2, stats.readsOk.sum());
  }

  @Test
  void aShortOrMismatchedBodyIsEioAndWritesNothing() throws Exception {
    FakeObject data = start(0);
    reg.intercept =
        r ->
            r.getUrl().encodedPath().contains(blobDesc.digest().toString())
                ? new MockResponse.Builder()
                    .code(206)
                    .addHeader(
                        "Content-Range",
                        "bytes " + 5 * CHUNK + "-" + (6 * CHUNK - 1) + "/" + blob.length)
                    .body(FakeRegistry.buffer(blob, 5 * CHUNK, CHUNK / 2))
                    .setHeader("Content-Length", CHUNK)
                    .onResponseEnd(SocketEffect.ShutdownConnection.INSTANCE)
                    .build()
                : null;
    ExpectedLogs.warning("READ " + 5 * CHUNK + "+4096 failed: ");
    assertEquals(Outcome.EIO, kernel.read(data, 5 * CHUNK, 4096).get(10, TimeUnit.SECONDS));
    assertEquals(
        -1,
        Posix.lseek(data.anonFd, 0, Posix.SEEK_DATA),
        "no byte of the torn chunk reached the file");

    reg.intercept =
        r ->
            r.getUrl().encodedPath().contains(blobDesc.digest().toString())
                ? new MockResponse.Builder()
                    .code(206)
                    .addHeader("Content-Range", "bytes 0-" + (CHUNK - 1) + "/" + blob.length)
                    .body(FakeRegistry.buffer(blob, 0, CHUNK))
                    .build()
                : null;
    ExpectedLogs.warning("READ " + 7 * CHUNK + "+4096 failed: ");
    assertEquals(Outcome.EIO, kernel.read(data, 7 * CHUNK, 4096).get(10, TimeUnit.SECONDS));
    assertEquals(
        -1, Posix.lseek(data.anonFd, 0, Posix.SEEK_DATA), "a wrong Content-Range writes nothing");
    assertEquals(2, stats.readsFailed.sum());

    reg.intercept = null; // the registry recovers: the same ranges now succeed
    assertEquals(Outcome.DATA, kernel.read(data, 5 * CHUNK, 4096).get(5, TimeUnit.SECONDS));
    assertArrayEquals(
        Arrays.copyOfRange(blob, 5 * CHUNK, 6 * CHUNK),
        Arrays.copyOfRange(Files.readAllBytes(data.file), 5 * CHUNK, 6 * CHUNK));
  }

  @Test
  void sequentialReadsFetchAheadInFewerLargerRequestsAndEachByteOnce() throws Exception {
    FakeObject data = start(16L * CHUNK, 200);
    assertEquals(Outcome.DATA, kernel.read(data, 0, 16384).get(5, TimeUnit.SECONDS));
    assertEquals(Outcome.DATA, kernel.read(data, CHUNK, 16384).get(5, TimeUnit.SECONDS));
    // the second sequential READ started read-ahead of the next chunk, unasked by the kernel
    Await.until(() -> fetchStats.bytesFetched.sum() >= 3L * CHUNK, "read-ahead of the third chunk");
    assertEquals(3L * CHUNK, fetchStats.bytesFetched.sum());
    assertArrayEquals(
        Arrays.copyOfRange(blob, 2 * CHUNK, 3 * CHUNK),
        Arrays.copyOfRange(Files.readAllBytes(data.file), 2 * CHUNK, 3 * CHUNK));

    // a reader going through the whole blob, the kernel's way: a READ only where the file still has
    // a hole
    int reads = 0;
    for (long off = 2L * CHUNK; off < blob.length; off += CHUNK) {
      if (Posix.lseek(data.anonFd, off, Posix.SEEK_DATA) != off) {
        assertEquals(Outcome.DATA, kernel.read(data, off, 16384).get(5, TimeUnit.SECONDS));
        reads++;
      }
    }
    assertTrue(reads < 199, "read-ahead spared the reader some READs: " + reads);
    assertArrayEquals(blob, Arrays.copyOf(Files.readAllBytes(data.file), blob.length));
    assertEquals(blob.length, fetchStats.bytesFetched.sum(), "each byte fetched once");
    assertTrue(
        fetchStats.fetches.sum() < 150,
        "fewer ranged reads than chunks: " + fetchStats.fetches.sum());
    assertTrue(
        blobGets().stream()
            .map(r -> r.getHeaders().get("Range"))
            .anyMatch(
                r -> {
                  String[] ab = r.substring(6).split("-");
                  return Long.parseLong(ab[1]) - Long.parseLong(ab[0]) + 1 > CHUNK;
                }),
        "some read-ahead requests cover several chunks");
  }
}

package dev.lazypull.prefetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.app.DaemonApi;
import dev.lazypull.blob.BlobSource;
import dev.lazypull.blob.ImageSource;
import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.fetch.ChunkMap;
import dev.lazypull.frontend.ServedBlob;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.sys.Posix;
import dev.lazypull.testing.Await;
import dev.lazypull.testing.DaemonHarness;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.FakeKernel;
import dev.lazypull.testing.FakeKernel.FakeObject;
import dev.lazypull.testing.FakeKernel.Outcome;
import dev.lazypull.testing.MemoryBlobSource;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PrefetchTest {
  @TempDir Path tmp;
  private final MemoryBlobSource source = new MemoryBlobSource();
  private DaemonHarness harness;
  private FakeKernel kernel;
  private DaemonApi api;
  private Catalog catalog;
  private byte[] boot;
  private byte[] blob;
  private Descriptor blobDesc;

  private void start(PrefetchConfig prefetch) throws Exception {
    start(prefetch, true);
  }

  /**
   * @param withTable give the data blob a chunk digest table (64 KiB entries), as images from pack
   *     have
   */
  private void start(PrefetchConfig prefetch, boolean withTable) throws Exception {
    boot = MemoryBlobSource.randomBytes(64 << 10, 1);
    blob = MemoryBlobSource.randomBytes(33 << 16, 2); // 33 chunks of 64 KiB
    Descriptor bootDesc = source.add(boot, MediaTypes.EROFS_BOOTSTRAP);
    blobDesc = source.add(blob, MediaTypes.EROFS_BLOB);
    List<Descriptor> tables = List.of();
    if (withTable) {
      ChunkDigestTable.Builder tb = new ChunkDigestTable.Builder();
      for (int i = 0; i < 33; i++) {
        tb.add(
            64 << 10,
            MessageDigest.getInstance("SHA-256")
                .digest(Arrays.copyOfRange(blob, i << 16, (i + 1) << 16)));
      }
      tables = List.of(source.add(tb.build().encode(), MediaTypes.CHUNK_DIGESTS));
    }
    ImageSource image =
        new ImageSource() {
          @Override
          public LazyImage resolve() {
            throw new UnsupportedOperationException();
          }

          @Override
          public BlobSource blobs() {
            return source;
          }
        };
    catalog = Catalog.load(tmp.resolve("state"));
    catalog.register(
        new ImageRecord(
            "img",
            null,
            "mem/img:1",
            Digest.of("m".getBytes()),
            bootDesc,
            List.of(blobDesc),
            List.of(blobDesc.digest().hex()),
            false,
            tables),
        false);
    harness =
        DaemonHarness.in(tmp)
            .sources(new ImageSources(ref -> image))
            .config(
                c ->
                    c.fetch(f -> f.withMergeLimit(64 << 10).withBufferSize(64 << 10))
                        .prefetch(prefetch))
            .start();
    kernel = harness.kernel;
    api = new DaemonApi(harness.daemon);
  }

  @AfterEach
  void stop() {
    if (harness != null) {
      harness.close();
    }
  }

  /** Waits until the image has no prefetch job running. */
  private void awaitNoPrefetchRunning(String what) throws InterruptedException {
    Await.until(
        () -> {
          try {
            return !call("prefetch-status").path("running").asBoolean();
          } catch (Exception e) {
            throw new RuntimeException(e);
          }
        },
        what);
  }

  private JsonNode call(String op) throws Exception {
    return api.handle(op, Json.MAPPER.createObjectNode().put("image", "img"));
  }

  @Test
  void explicitPrefetchFillsEveryBlobThroughTheObjects() throws Exception {
    start(new PrefetchConfig(PrefetchPolicy.NONE, 2, 0, Duration.ZERO));
    assertThrows(IllegalArgumentException.class, () -> call("prefetch"), "not mounted yet");
    FakeObject b = kernel.open("erofs,img", "img");
    FakeObject d = kernel.open("erofs,img", blobDesc.digest().hex());
    b.copen.get(5, TimeUnit.SECONDS);
    d.copen.get(5, TimeUnit.SECONDS);
    call("prefetch");
    awaitNoPrefetchRunning("prefetch done");
    JsonNode s = call("prefetch-status");
    assertEquals(boot.length + blob.length, s.path("readyBytes").asLong());
    assertEquals("done", s.path("jobs").get(0).path("state").asText());
    assertArrayEquals(blob, Arrays.copyOf(Files.readAllBytes(d.file), blob.length));
    assertArrayEquals(boot, Arrays.copyOf(Files.readAllBytes(b.file), boot.length));
    int fetched = source.requests.size();
    assertEquals(Outcome.DATA, kernel.read(d, 0, blob.length).get(5, TimeUnit.SECONDS));
    assertEquals(fetched, source.requests.size(), "nothing left to fetch after prefetch");
  }

  /**
   * {@code [prefetch] threads} is a ceiling: a job starts with four fetches in flight (not the
   * ceiling of eight) and adapts from there; with the source held, no more than that start.
   */
  @Test
  void prefetchStartsWithFourFetchesInFlightBelowItsCeiling() throws Exception {
    start(new PrefetchConfig(PrefetchPolicy.NONE, 8, 0, Duration.ZERO));
    FakeObject b = kernel.open("erofs,img", "img");
    FakeObject d = kernel.open("erofs,img", blobDesc.digest().hex());
    b.copen.get(5, TimeUnit.SECONDS);
    d.copen.get(5, TimeUnit.SECONDS);
    // tables and first chunks in first: with the source held, only prefetch fetches ask it
    assertEquals(Outcome.DATA, kernel.read(b, 0, 1).get(5, TimeUnit.SECONDS));
    assertEquals(Outcome.DATA, kernel.read(d, 0, 1).get(5, TimeUnit.SECONDS));
    int before = source.requests.size();
    CountDownLatch gate = new CountDownLatch(1);
    source.gate = gate;
    call("prefetch");
    Await.until(() -> source.requests.size() - before == 4, "four prefetch fetches started");
    assertEquals(4, harness.daemon.prefetch().prefetcher().concurrency());
    // the driver is blocked in the limit: no fifth request can have been issued meanwhile
    Await.until(
        () -> harness.daemon.prefetch().prefetcher().inFlightNow() == 4,
        "four fetches counted in flight");
    assertEquals(4, source.requests.size() - before, "no fifth fetch while four are held");
    gate.countDown();
    awaitNoPrefetchRunning("prefetch done");
    assertEquals("done", call("prefetch-status").path("jobs").get(0).path("state").asText());
    assertArrayEquals(blob, Arrays.copyOf(Files.readAllBytes(d.file), blob.length));
  }

  /**
   * {@code prefetch --wait} blocks in {@code prefetch-status} with {@code waitMillis}: the answer
   * comes when the job ends (not at the next poll), or after waitMillis with the job still running.
   */
  @Test
  void statusWithWaitMillisAnswersWhenTheJobEndsOrTheWaitRunsOut() throws Exception {
    start(new PrefetchConfig(PrefetchPolicy.NONE, 1, 0, Duration.ZERO));
    source.delayMillis = 40; // 33 chunks one after another: over a second in all
    FakeObject d = kernel.open("erofs,img", blobDesc.digest().hex());
    d.copen.get(5, TimeUnit.SECONDS);
    call("prefetch");
    JsonNode brief =
        api.handle(
            "prefetch-status",
            Json.MAPPER.createObjectNode().put("image", "img").put("waitMillis", 50));
    assertTrue(brief.path("running").asBoolean(), "still running after 50 ms");
    assertTrue(brief.path("waitedMillis").asLong() >= 50, brief.toString());
    JsonNode end =
        api.handle(
            "prefetch-status",
            Json.MAPPER.createObjectNode().put("image", "img").put("waitMillis", 60_000));
    assertFalse(end.path("running").asBoolean(), end.toString());
    assertEquals("done", end.path("jobs").get(0).path("state").asText());
    assertTrue(
        end.path("waitedMillis").asLong() < 30_000,
        "answered when the job ended, not at the wait's end: " + end);
    JsonNode idle =
        api.handle(
            "prefetch-status",
            Json.MAPPER.createObjectNode().put("image", "img").put("waitMillis", 60_000));
    assertTrue(idle.path("waitedMillis").asLong() < 1_000, "nothing running: no wait");
  }

  @Test
  void onDemandReadsDoNotQueueBehindPrefetch() throws Exception {
    start(new PrefetchConfig(PrefetchPolicy.NONE, 1, 0, Duration.ZERO));
    source.delayMillis = 40; // every fetch is slow: a 33-chunk prefetch takes over a second
    FakeObject d = kernel.open("erofs,img", blobDesc.digest().hex());
    d.copen.get(5, TimeUnit.SECONDS);
    long before = source.requests.stream().filter(r -> r.blob().equals(blobDesc.digest())).count();
    call("prefetch");
    Await.until(
        () ->
            source.requests.stream().filter(r -> r.blob().equals(blobDesc.digest())).count()
                > before,
        "prefetch's one thread busy fetching the blob");
    long t0 = System.nanoTime();
    assertEquals(Outcome.DATA, kernel.read(d, 30L << 16, 4096).get(5, TimeUnit.SECONDS));
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    assertTrue(call("prefetch-status").path("running").asBoolean(), "prefetch still running");
    assertTrue(ms < 500, "the READ took " + ms + " ms: it waited behind prefetch");
    assertEquals(1, call("prefetch-stop").path("cancelled").asInt());
  }

  @Test
  void aFullPrefetchOfABlobWithoutATableChecksTheWholeBlobDigestFirst() throws Exception {
    start(new PrefetchConfig(PrefetchPolicy.NONE, 2, 0, Duration.ZERO), false);
    FakeObject d = kernel.open("erofs,img", blobDesc.digest().hex());
    d.copen.get(5, TimeUnit.SECONDS);
    byte[] good = blob.clone();
    blob[12345] ^= 1;
    source.serveAs(blobDesc.digest(), blob); // bytes that do not hash to the descriptor's digest
    ExpectedLogs.warning("blob " + blobDesc.digest() + " from memory hashes to " + Digest.of(blob));
    call("prefetch");
    awaitNoPrefetchRunning("prefetch finished");
    JsonNode s = call("prefetch-status");
    assertEquals("failed", s.path("jobs").get(0).path("state").asText());
    assertTrue(s.path("jobs").get(0).path("error").asText().contains(blobDesc.digest().toString()));
    assertEquals(-1, Posix.lseek(d.anonFd, 0, Posix.SEEK_DATA), "nothing written");

    source.serveAs(
        blobDesc.digest(),
        good); // the source is fixed: the same prefetch now verifies and fills the file
    call("prefetch");
    awaitNoPrefetchRunning("prefetch finished");
    assertEquals("done", call("prefetch-status").path("jobs").get(0).path("state").asText());
    assertArrayEquals(good, Arrays.copyOf(Files.readAllBytes(d.file), good.length));
  }

  @Test
  void bandwidthCapSlowsPrefetch() throws Exception {
    start(
        new PrefetchConfig(PrefetchPolicy.NONE, 2, 2 << 20, Duration.ZERO)); // 2 MiB/s for ~2.1 MiB
    FakeObject d = kernel.open("erofs,img", blobDesc.digest().hex());
    d.copen.get(5, TimeUnit.SECONDS);
    long t0 = System.nanoTime();
    call("prefetch");
    awaitNoPrefetchRunning("prefetch done");
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    assertTrue(ms >= 700, "2.1 MiB at 2 MiB/s (250 ms burst) finished in " + ms + " ms");
  }

  @Test
  void aRecordedProfileIsReplayedOnTheNextMount() throws Exception {
    start(new PrefetchConfig(PrefetchPolicy.PROFILE, 2, 0, Duration.ofSeconds(30)));
    FakeObject b = kernel.open("erofs,img", "img");
    FakeObject d = kernel.open("erofs,img", blobDesc.digest().hex());
    b.copen.get(5, TimeUnit.SECONDS);
    d.copen.get(5, TimeUnit.SECONDS);
    assertEquals(Outcome.DATA, kernel.read(b, 0, 4096).get(5, TimeUnit.SECONDS));
    assertEquals(Outcome.DATA, kernel.read(d, 5L << 16, 8192).get(5, TimeUnit.SECONDS));
    assertEquals(Outcome.DATA, kernel.read(d, 20L << 16, 4096).get(5, TimeUnit.SECONDS));
    kernel.close(d);
    kernel.close(b); // umount: the recording window ends early and the profile is saved
    Path profile = AccessProfile.path(tmp.resolve("state"), Digest.of("m".getBytes()));
    Await.until(() -> Files.exists(profile), "profile saved");
    AccessProfile p =
        AccessProfile.load(tmp.resolve("state"), Digest.of("m".getBytes())).orElseThrow();
    assertEquals(3, p.ranges().size());
    assertEquals(3L << 16, p.totalBytes());

    // A cold mount (fresh cache files): the recorded chunks arrive before anyone reads them.
    int before = source.requests.size();
    FakeObject b2 = kernel.open("erofs,img", "img");
    FakeObject d2 = kernel.open("erofs,img", blobDesc.digest().hex());
    b2.copen.get(5, TimeUnit.SECONDS);
    d2.copen.get(5, TimeUnit.SECONDS);
    Await.until(() -> source.requests.size() - before == 3, "replayed 3 ranges");
    Await.until(
        () -> harness.served("img").stream().mapToLong(ServedBlob::readyBytes).sum() == 3L << 16,
        "replayed ranges ready");
    ChunkMap blobMap =
        harness.served("img").stream()
            .filter(o -> !o.binding().isBootstrap())
            .findFirst()
            .orElseThrow()
            .fetcher()
            .join()
            .map();
    assertTrue(blobMap.isReady(5) && blobMap.isReady(20));
    assertFalse(blobMap.isReady(6));
  }

  @Test
  void aProfileCoversWhatReadAheadFetchedNotOnlyWhatWasAskedFor() throws Exception {
    start(new PrefetchConfig(PrefetchPolicy.PROFILE, 2, 0, Duration.ofSeconds(30)));
    FakeObject b = kernel.open("erofs,img", "img");
    FakeObject d = kernel.open("erofs,img", blobDesc.digest().hex());
    b.copen.get(5, TimeUnit.SECONDS);
    d.copen.get(5, TimeUnit.SECONDS);
    for (int c = 0;
        c < 3;
        c++) { // a sequential reader: read-ahead fetches chunk 3 before it is asked for
      assertEquals(Outcome.DATA, kernel.read(d, (long) c << 16, 64 << 10).get(5, TimeUnit.SECONDS));
    }
    ChunkMap blobMap =
        harness.served("img").stream()
            .filter(o -> !o.binding().isBootstrap())
            .findFirst()
            .orElseThrow()
            .fetcher()
            .join()
            .map();
    Await.until(() -> blobMap.isReady(3), "read-ahead fetched chunk 3");
    kernel.close(d);
    kernel.close(b);
    Path profile = AccessProfile.path(tmp.resolve("state"), Digest.of("m".getBytes()));
    Await.until(() -> Files.exists(profile), "profile saved");
    AccessProfile p =
        AccessProfile.load(tmp.resolve("state"), Digest.of("m".getBytes())).orElseThrow();
    // without chunk 3 a replay would leave it for a READ: the mount that recorded never sent one
    // for it
    assertEquals(
        List.of(new AccessProfile.Range(blobDesc.digest().toString(), 0, 4L << 16)), p.ranges());
  }
}

package dev.lazypull.fscache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.fetch.FetchStats;
import dev.lazypull.frontend.Frontend;
import dev.lazypull.frontend.RequestStats;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.oci.OciLayoutWriter;
import dev.lazypull.sys.Posix;
import dev.lazypull.testing.Await;
import dev.lazypull.testing.DaemonHarness;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.FakeKernel;
import dev.lazypull.testing.FakeKernel.FakeObject;
import dev.lazypull.testing.FakeKernel.Outcome;
import dev.lazypull.testing.MemoryBlobSource;
import dev.lazypull.testing.Msgs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The daemon against a fake kernel that writes real O_DIRECT sparse files and checks every reply.
 */
class FscacheFrontendTest {
  @TempDir Path tmp;
  private DaemonHarness harness;
  private FakeKernel kernel;
  private Frontend daemon;
  private Catalog catalog;
  private RequestStats stats;
  private FetchStats fetchStats;

  private byte[] bootstrap;
  private byte[] blob;
  private Descriptor bootDesc;
  private Descriptor blobDesc;
  private Path layout;

  private void start(Duration deadline, ImageSources sources) throws IOException {
    harness =
        DaemonHarness.in(tmp)
            .sources(sources)
            .config(c -> c.fetch(f -> f.withReadTimeout(deadline)))
            .start();
    kernel = harness.kernel;
    catalog = harness.catalog();
    daemon = harness.frontend();
    stats = harness.stats();
    fetchStats = harness.fetchStats();
  }

  private void start() throws IOException {
    start(Duration.ofSeconds(10), ImageSources.localOnly());
  }

  /**
   * Writes a two-layer image into an OCI layout and registers it under fsid "img1" in domain "dom".
   */
  private ImageRecord registerImage(String fsid, String domain) throws IOException {
    if (layout == null) {
      layout = tmp.resolve("layout");
      OciLayoutWriter w = new OciLayoutWriter(layout);
      bootstrap = MemoryBlobSource.randomBytes(3 * 65536 + 777, 11);
      blob = MemoryBlobSource.randomBytes(20 * 65536 + 123, 12);
      bootDesc = w.putBlob(bootstrap, MediaTypes.EROFS_BOOTSTRAP);
      blobDesc = w.putBlob(blob, MediaTypes.EROFS_BLOB);
    }
    ImageRecord r =
        new ImageRecord(
            fsid,
            domain,
            "oci:" + layout,
            Digest.of(fsid.getBytes()),
            bootDesc,
            List.of(blobDesc),
            List.of(blobDesc.digest().hex()),
            false);
    return catalog.register(r, false);
  }

  @AfterEach
  void stop() {
    if (harness != null) {
      harness.close();
    }
  }

  private static byte[] fileBytes(FakeObject o, int from, int to) throws IOException {
    return Arrays.copyOfRange(Files.readAllBytes(o.file), from, to);
  }

  @Test
  void servesBootstrapAndBlobReadsWithCorrectBytes() throws Exception {
    start();
    registerImage("img1", null);
    FakeObject boot = kernel.open("erofs,img1", "img1");
    assertEquals(bootstrap.length, boot.copen.get(5, TimeUnit.SECONDS));
    FakeObject data = kernel.open("erofs,img1", blobDesc.digest().hex());
    assertEquals(blob.length, data.copen.get(5, TimeUnit.SECONDS));

    assertEquals(Outcome.DATA, kernel.read(boot, 0, 4096).get(5, TimeUnit.SECONDS));
    assertEquals(
        Outcome.DATA, kernel.read(data, 5 * 65536 + 8192, 131072).get(5, TimeUnit.SECONDS));
    // the final, partial block of the blob: padded with zeros up to 4096
    long lastBlock = (blob.length / 4096) * 4096L;
    assertEquals(Outcome.DATA, kernel.read(data, lastBlock, 4096).get(5, TimeUnit.SECONDS));

    assertArrayEquals(Arrays.copyOfRange(bootstrap, 0, 4096), fileBytes(boot, 0, 4096));
    assertArrayEquals(
        Arrays.copyOfRange(blob, 5 * 65536, 8 * 65536), fileBytes(data, 5 * 65536, 8 * 65536));
    assertArrayEquals(
        Arrays.copyOfRange(blob, (int) lastBlock, blob.length),
        fileBytes(data, (int) lastBlock, blob.length));
    assertTrue(kernel.allAnswered());
    assertEquals(3, stats.readsOk.sum());
  }

  @Test
  void unknownCookieIsRefusedWithEnoentAndItsFdClosed() throws Exception {
    start();
    registerImage("img1", null);
    ExpectedLogs.warning("no registered image has volume 'erofs,img1' and cookie 'no-such-cookie'");
    ExpectedLogs.warning("no registered image has volume 'erofs,other' and cookie 'img1'");
    FakeObject o = kernel.open("erofs,img1", "no-such-cookie");
    assertEquals(-2L, o.copen.get(5, TimeUnit.SECONDS));
    Await.until(() -> o.fdClosed, "fd closed");
    FakeObject wrongVolume = kernel.open("erofs,other", "img1");
    assertEquals(-2L, wrongVolume.copen.get(5, TimeUnit.SECONDS));
    assertEquals(2, stats.opensRefused.sum());
    // still serving
    FakeObject boot = kernel.open("erofs,img1", "img1");
    assertEquals(bootstrap.length, boot.copen.get(5, TimeUnit.SECONDS));
    assertEquals(Outcome.DATA, kernel.read(boot, 0, 4096).get(5, TimeUnit.SECONDS));
  }

  @Test
  void imagesInOneDomainShareTheBlobCookie() throws Exception {
    start();
    registerImage("img1", "dom");
    registerImage("img2", "dom");
    FakeObject b1 = kernel.open("erofs,dom", "img1");
    FakeObject b2 = kernel.open("erofs,dom", "img2");
    FakeObject shared = kernel.open("erofs,dom", blobDesc.digest().hex());
    assertEquals(bootstrap.length, b1.copen.get(5, TimeUnit.SECONDS));
    assertEquals(bootstrap.length, b2.copen.get(5, TimeUnit.SECONDS));
    assertEquals(blob.length, shared.copen.get(5, TimeUnit.SECONDS));
    ExpectedLogs.warning("no registered image has volume 'erofs,img1' and cookie 'img1'");
    assertEquals(
        -2L, kernel.open("erofs,img1", "img1").copen.get(5, TimeUnit.SECONDS), "img1 lives in dom");
  }

  @Test
  void manyOverlappingReadsFetchEachChunkOnceAndAllSucceed() throws Exception {
    start();
    registerImage("img1", null);
    FakeObject data = kernel.open("erofs,img1", blobDesc.digest().hex());
    data.copen.get(5, TimeUnit.SECONDS);
    Random rnd = new Random(5);
    // some of the random READs below run past the end of the blob
    ExpectedLogs.warning("goes past the blob's " + blob.length + " bytes");
    List<CompletableFuture<Outcome>> reads = new ArrayList<>();
    for (int i = 0; i < 300; i++) {
      long off = (long) rnd.nextInt(blob.length / 4096) * 4096;
      long len = 4096L * (1 + rnd.nextInt(32));
      reads.add(kernel.read(data, off, len));
    }
    for (CompletableFuture<Outcome> r : reads) {
      assertEquals(Outcome.DATA, r.get(10, TimeUnit.SECONDS));
    }
    int chunks = (blob.length + 65535) / 65536;
    assertTrue(
        fetchStats.bytesFetched.sum() <= blob.length,
        "each byte fetched at most once: " + fetchStats.bytesFetched.sum());
    assertTrue(fetchStats.fetches.sum() <= chunks);
    assertEquals(300, stats.readsOk.sum());
    assertTrue(kernel.allAnswered());
  }

  @Test
  void aSlowSourceIsAnsweredWithEioAtTheDeadlineAndRecovers() throws Exception {
    MemoryBlobSource slow = new MemoryBlobSource();
    ImageSources sources =
        new ImageSources(
            ref -> {
              throw new IOException("unused");
            });
    start(Duration.ofMillis(300), sources);
    registerImage("img1", null);
    Path blobFile = layout.resolve("blobs/sha256/" + blobDesc.digest().hex());
    FakeObject data = kernel.open("erofs,img1", blobDesc.digest().hex());
    data.copen.get(5, TimeUnit.SECONDS);
    // Make the layout's blob unreadable for a while: the READ must still be answered, with EIO, in
    // time.
    Path hidden = blobFile.resolveSibling("hidden");
    Files.move(blobFile, hidden);
    ExpectedLogs.warning("READ 0+4096 ");
    long t0 = System.nanoTime();
    assertEquals(Outcome.EIO, kernel.read(data, 0, 4096).get(5, TimeUnit.SECONDS));
    assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(3));
    Files.move(hidden, blobFile);
    assertEquals(Outcome.DATA, kernel.read(data, 0, 4096).get(5, TimeUnit.SECONDS));
    assertEquals(1, stats.readsFailed.sum() + stats.readsTimedOut.sum());
    assertTrue(slow.requests.isEmpty());
  }

  @Test
  void aBootstrapIsCachedOnlyWholeAndMatchingItsDigest() throws Exception {
    start();
    registerImage("img1", null);
    Path file = layout.resolve("blobs/sha256/" + bootDesc.digest().hex());
    byte[] tampered = bootstrap.clone();
    tampered[tampered.length - 100] ^= 1; // far from the block the READ asks for
    Files.write(file, tampered);
    FakeObject boot = kernel.open("erofs,img1", "img1");
    boot.copen.get(5, TimeUnit.SECONDS);
    ExpectedLogs.severe(
        "integrity: blob " + bootDesc.digest() + " bytes 0+" + bootstrap.length + " ");
    ExpectedLogs.warning("READ 0+4096 failed: ");
    assertEquals(Outcome.EIO, kernel.read(boot, 0, 4096).get(5, TimeUnit.SECONDS));
    assertEquals(
        -1,
        Posix.lseek(boot.anonFd, 0, Posix.SEEK_DATA),
        "not a byte of the tampered bootstrap was cached");

    Files.write(
        file, bootstrap); // repaired: the next READ fetches it whole, and one READ is enough
    assertEquals(Outcome.DATA, kernel.read(boot, 0, 4096).get(5, TimeUnit.SECONDS));
    assertEquals(
        Outcome.DATA, kernel.read(boot, bootstrap.length - 777, 777).get(5, TimeUnit.SECONDS));
    assertEquals(1, stats.readsFailed.sum());
    assertEquals(
        bootstrap.length, fetchStats.bytesFetched.sum() - tampered.length, "fetched whole, twice");
  }

  @Test
  void readsPastTheEndZeroLengthAndHugeAreAllAnswered() throws Exception {
    start();
    registerImage("img1", null);
    FakeObject boot = kernel.open("erofs,img1", "img1");
    boot.copen.get(5, TimeUnit.SECONDS);
    long padded = (bootstrap.length + 4095) / 4096 * 4096;
    ExpectedLogs.warning(
        "READ " + (padded - 4096) + "+8192 goes past the blob's " + bootstrap.length + " bytes");
    ExpectedLogs.warning("failing READ of " + (1L << 40) + " bytes at " + (padded + 4096));
    ExpectedLogs.warning(
        "READ "
            + (padded + 4096)
            + "+"
            + (1L << 40)
            + " failed: java.io.IOException: invalid READ");
    assertEquals(
        Outcome.DATA,
        kernel.read(boot, padded - 4096, 8192).get(5, TimeUnit.SECONDS),
        "the in-range part is served");
    assertEquals(Outcome.EIO, kernel.read(boot, padded + 4096, 4096).get(5, TimeUnit.SECONDS));
    assertEquals(Outcome.DATA, kernel.read(boot, 0, 0).get(5, TimeUnit.SECONDS));
    // (past the end: the bootstrap is fetched whole, so at offset 0 the kernel would find data
    // regardless)
    assertEquals(Outcome.EIO, kernel.read(boot, padded + 4096, 1L << 40).get(5, TimeUnit.SECONDS));
    assertEquals(Outcome.EIO, kernel.read(boot, -4096, 4096).get(5, TimeUnit.SECONDS));
    assertTrue(kernel.allAnswered());
    assertEquals(2, stats.readsInvalid.sum());
  }

  @Test
  void malformedMessagesAreAnsweredAndTheDaemonKeepsServing() throws Exception {
    start();
    registerImage("img1", null);
    FakeObject boot = kernel.open("erofs,img1", "img1");
    boot.copen.get(5, TimeUnit.SECONDS);

    // an OPEN whose header length lies: refused with EINVAL, its fd closed
    FakeObject victim = kernel.pendingOpen("erofs,img1", "img1");
    byte[] open = Msgs.open(kernel.msgIdOf(victim), 99, "erofs,img1", "img1", victim.anonFd);
    ByteBuffer.wrap(open).order(ByteOrder.nativeOrder()).putInt(8, open.length + 1);
    ExpectedLogs.warning(
        "header says " + (open.length + 1) + " bytes but read returned " + open.length);
    kernel.raw(open);
    assertEquals(-22L, victim.copen.get(5, TimeUnit.SECONDS));
    Await.until(() -> victim.fdClosed, "malformed OPEN's fd closed");

    // a READ of the wrong size for a known object: answered without data
    int readId = kernel.allocateMsgId();
    CompletableFuture<Outcome> bad = kernel.expectRead(boot, readId, 0, 4096);
    byte[] read = Msgs.read(readId, boot.objectId, 0, 4096);
    byte[] shortRead = Arrays.copyOf(read, 24);
    ByteBuffer.wrap(shortRead).order(ByteOrder.nativeOrder()).putInt(8, 24);
    ExpectedLogs.warning("): READ of 24 bytes");
    ExpectedLogs.warning("READ 0+0 failed: java.io.IOException: READ of 24 bytes");
    kernel.raw(shortRead);
    assertEquals(Outcome.EIO, bad.get(5, TimeUnit.SECONDS));

    // garbage: truncated header, unknown opcode
    ExpectedLogs.warning("truncated message: 3 bytes");
    ExpectedLogs.warning("unknown opcode 7");
    kernel.raw(new byte[] {1, 2, 3});
    byte[] unknown = Msgs.close(kernel.allocateMsgId(), 1);
    ByteBuffer.wrap(unknown).order(ByteOrder.nativeOrder()).putInt(4, 7);
    kernel.raw(unknown);

    assertEquals(Outcome.DATA, kernel.read(boot, 0, 4096).get(5, TimeUnit.SECONDS));
    // malformed messages are handled on the object thread, independently of that READ
    Await.until(() -> stats.malformed.sum() >= 4, "all four malformed messages handled");
    assertTrue(daemon.isRunning());
  }

  @Test
  void aReadForAnUnknownObjectIsStillAnswered() throws Exception {
    start();
    registerImage("img1", null);
    FakeObject boot = kernel.open("erofs,img1", "img1");
    boot.copen.get(5, TimeUnit.SECONDS);
    kernel.lenientReadComplete = true; // pre-6.10 kernels accept the reply through any anon fd
    ExpectedLogs.warning("READ for unknown object 12345; answering without data");
    assertEquals(Outcome.EIO, kernel.read(boot, 12345, 0, 4096).get(5, TimeUnit.SECONDS));
    assertEquals(1, stats.readsOrphaned.sum());
  }

  @Test
  void closeReleasesTheFdOnlyAfterInFlightReadsAreAnswered() throws Exception {
    MemoryBlobSource unused = new MemoryBlobSource();
    start();
    registerImage("img1", null);
    FakeObject data = kernel.open("erofs,img1", blobDesc.digest().hex());
    data.copen.get(5, TimeUnit.SECONDS);
    CompletableFuture<Outcome> r = kernel.read(data, 0, 65536);
    // if the CLOSE is handled before the READ's fetch completes, the READ fails
    ExpectedLogs.allowWarning(
        "READ 0+65536 failed: java.io.IOException: object " + data.objectId + " was closed");
    kernel.close(data);
    // Answered (through a still-open fd: the fake records a violation otherwise), then the fd goes.
    r.get(5, TimeUnit.SECONDS);
    Await.until(() -> data.fdClosed, "anon fd closed after CLOSE");
    assertEquals(1, stats.closes.sum());
    assertTrue(unused.requests.isEmpty());
  }

  @Test
  void aReopenedCacheFileIsNotFetchedAgain() throws Exception {
    start();
    registerImage("img1", null);
    FakeObject data = kernel.open("erofs,img1", blobDesc.digest().hex());
    data.copen.get(5, TimeUnit.SECONDS);
    assertEquals(Outcome.DATA, kernel.read(data, 0, 4 * 65536).get(5, TimeUnit.SECONDS));
    long fetched = fetchStats.bytesFetched.sum();
    kernel.close(data);
    Await.until(() -> data.fdClosed, "closed");
    FakeObject again = kernel.reopen(data);
    assertEquals(blob.length, again.copen.get(5, TimeUnit.SECONDS));
    // A READ overlapping cached and missing chunks fetches only the missing ones.
    assertEquals(Outcome.DATA, kernel.read(again, 3 * 65536, 2 * 65536).get(5, TimeUnit.SECONDS));
    assertEquals(fetched + 65536, fetchStats.bytesFetched.sum());
    assertArrayEquals(Arrays.copyOfRange(blob, 0, 5 * 65536), fileBytes(again, 0, 5 * 65536));
    assertFalse(kernel.violations.iterator().hasNext());
  }
}

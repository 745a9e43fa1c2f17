package dev.lazypull.fetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.sys.AlignedBuffers;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.MemoryBlobSource;
import dev.lazypull.testing.TestFetch;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The host cache's files, through {@link BlobCacheDir}: lazy fetches, readiness from the file,
 * verification.
 */
class BlobCacheFileTest {
  private static final int CHUNK = 64 << 10;
  @TempDir Path dir;
  private final MemoryBlobSource source = new MemoryBlobSource();
  private final FetchCore core = TestFetch.core(CHUNK, 4 * CHUNK);
  private final FetchStats stats = core.stats();

  @AfterEach
  void stop() {
    core.close();
  }

  private BlobCacheDir cache() throws IOException {
    return BlobCacheDir.open(dir.resolve("cache"), core);
  }

  private static byte[] read(BlobCacheFile f, long offset, int length) throws IOException {
    ByteBuffer buf = ByteBuffer.allocateDirect(length);
    f.read(buf, offset);
    assertFalse(buf.hasRemaining());
    byte[] out = new byte[length];
    buf.flip().get(out);
    return out;
  }

  @Test
  void fetchesLazilyServesWithPreadAndRefusesUncachedRanges() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(5 * CHUNK + 123, 7);
    Descriptor blob = source.add(data, "x");
    try (BlobCacheDir cache = cache()) {
      BlobCacheFile f = cache.file(TestFetch.ref(blob), source);
      assertEquals(
          AlignedBuffers.roundUp(data.length, 4096),
          Files.size(f.path()),
          "sized to the padded blob");
      assertThrows(
          IOException.class, () -> read(f, 0, 10), "an uncached range is an error, never zeros");
      f.ensure(CHUNK + 5, 10).get(5, TimeUnit.SECONDS);
      assertEquals(1, source.requests.size());
      assertArrayEquals(Arrays.copyOfRange(data, CHUNK, 2 * CHUNK), read(f, CHUNK, CHUNK));
      assertTrue(f.isCached(CHUNK, CHUNK));
      assertFalse(f.isCached(CHUNK, CHUNK + 1));
      f.ensure(5 * CHUNK, 4096)
          .get(5, TimeUnit.SECONDS); // the short last chunk, zero-padded to 4096
      byte[] tail = read(f, 5 * CHUNK, (int) (f.size() - 5 * CHUNK));
      assertArrayEquals(Arrays.copyOfRange(data, 5 * CHUNK, data.length), Arrays.copyOf(tail, 123));
      for (int i = 123; i < tail.length; i++) {
        assertEquals(0, tail[i]);
      }
      assertThrows(IOException.class, () -> read(f, f.size() - 10, 20), "past the end");
    }
  }

  @Test
  void readinessSurvivesReopeningFromTheFilesExtents() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(8 * CHUNK, 8);
    Descriptor blob = source.add(data, "x");
    try (BlobCacheDir cache = cache()) {
      BlobCacheFile f = cache.file(TestFetch.ref(blob), source);
      CompletableFuture.allOf(f.ensure(0, 1), f.ensure(3 * CHUNK, 2 * CHUNK))
          .get(5, TimeUnit.SECONDS);
    }
    int fetched = source.requests.size();
    try (BlobCacheDir cache = cache()) {
      BlobCacheFile f = cache.file(TestFetch.ref(blob), source);
      ChunkMap map = TestFetch.map(f);
      assertEquals(3, map.readyCount());
      assertTrue(map.isReady(0) && map.isReady(3) && map.isReady(4));
      f.ensure(3 * CHUNK, 2 * CHUNK).get(5, TimeUnit.SECONDS);
      assertEquals(
          fetched, source.requests.size(), "cached chunks are not fetched again after a restart");
      assertArrayEquals(
          Arrays.copyOfRange(data, 3 * CHUNK, 5 * CHUNK), read(f, 3 * CHUNK, 2 * CHUNK));
    }
  }

  @Test
  void aPartlyWrittenChunkIsNotTakenAsCached() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(4 * CHUNK, 9);
    Descriptor blob = source.add(data, "x");
    try (BlobCacheDir cache = cache()) {
      Path p = cache.pathOf(blob.digest());
      Files.createDirectories(p.getParent());
      try (RandomAccessFile raf =
          new RandomAccessFile(p.toFile(), "rw")) { // a crash half-way through chunk 1
        raf.setLength(4 * CHUNK);
        raf.seek(CHUNK);
        raf.write(data, CHUNK, CHUNK / 2);
      }
      BlobCacheFile f = cache.file(TestFetch.ref(blob), source);
      assertEquals(0, TestFetch.map(f).readyCount());
      f.ensure(CHUNK, 1).get(5, TimeUnit.SECONDS);
      assertArrayEquals(Arrays.copyOfRange(data, CHUNK, 2 * CHUNK), read(f, CHUNK, CHUNK));
      assertEquals(1, source.requests.size(), "the half-written chunk was fetched again, once");
    }
  }

  @Test
  void aWrongSizedFileIsCutToTheBlobAndTwoCachesShareOneFile() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(4 * CHUNK, 10);
    Descriptor blob = source.add(data, "x");
    try (BlobCacheDir a = cache();
        BlobCacheDir b = cache()) {
      Path p = a.pathOf(blob.digest());
      Files.createDirectories(p.getParent());
      Files.write(p, new byte[5 * CHUNK]);
      ExpectedLogs.warning(
          "has " + 5 * CHUNK + " bytes, not " + 4 * CHUNK + ": its contents are dropped");
      BlobCacheFile fa = a.file(TestFetch.ref(blob), source);
      assertEquals(4 * CHUNK, Files.size(p));
      BlobCacheFile fb =
          b.file(TestFetch.ref(blob), source); // another user of the same file: no refusal
      assertEquals(p, fb.path());
      TestFetch.map(fb); // set up (nothing cached yet) before the other user fetches
      fa.ensure(0, 2 * CHUNK).get(5, TimeUnit.SECONDS);
      assertEquals(1, source.requests.size());
      // b's map still says missing: under its claim it finds the chunks in the file and fetches
      // nothing
      fb.ensure(0, 2 * CHUNK).get(5, TimeUnit.SECONDS);
      assertEquals(1, source.requests.size(), "chunks the other user wrote are not fetched again");
      assertArrayEquals(Arrays.copyOf(data, 2 * CHUNK), read(fb, 0, 2 * CHUNK));
      fb.ensure(3 * CHUNK, 1).get(5, TimeUnit.SECONDS);
      assertEquals(2, source.requests.size());
    }
  }

  @Test
  void concurrentMissesShareOneFetchAndFailuresLeaveChunksMissing() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(4 * CHUNK, 11);
    Descriptor blob = source.add(data, "x");
    try (BlobCacheDir cache = cache()) {
      BlobCacheFile f = cache.file(TestFetch.ref(blob), source);
      TestFetch.map(f);
      source.gate = new CountDownLatch(1);
      CompletableFuture<Void> a = f.ensure(0, 10);
      CompletableFuture<Void> b = f.ensure(100, 10);
      source.gate.countDown();
      CompletableFuture.allOf(a, b).get(5, TimeUnit.SECONDS);
      assertEquals(1, source.requests.size());
      source.failWith = new IOException("registry down");
      assertThrows(Exception.class, () -> f.ensure(2 * CHUNK, 1).get(5, TimeUnit.SECONDS));
      assertFalse(f.isCached(2 * CHUNK, 1));
      assertEquals(1, stats.fetchFailures.sum());
    }
  }

  @Test
  void closedFilesRefuseIo() throws Exception {
    Descriptor blob = source.add(MemoryBlobSource.randomBytes(CHUNK, 12), "x");
    BlobCacheDir cache = cache();
    BlobCacheFile f = cache.file(TestFetch.ref(blob), source);
    f.ensure(0, 1).get(5, TimeUnit.SECONDS);
    cache.close();
    IOException e = assertThrows(IOException.class, () -> read(f, 0, 10));
    assertTrue(e.getMessage().contains("closed"), e.getMessage());
    assertThrows(IOException.class, () -> cache.file(TestFetch.ref(blob), source));
  }

  @Test
  void aCacheDirSharesOneFilePerDigest() throws Exception {
    Descriptor blob = source.add(MemoryBlobSource.randomBytes(CHUNK, 13), "x");
    try (BlobCacheDir cache = cache()) {
      BlobCacheFile a = cache.file(TestFetch.ref(blob), source);
      assertSame(a, cache.file(TestFetch.ref(blob), source));
      assertEquals(cache.pathOf(blob.digest()), a.path());
      assertTrue(a.path().toString().endsWith("blobs/sha256/" + blob.digest().hex()));
      Descriptor lying = new Descriptor("x", blob.digest(), blob.size() + 1);
      assertThrows(IOException.class, () -> cache.file(TestFetch.ref(lying), source));
    }
  }

  /**
   * A table over {@code data} in CHUNK entries; entry {@code wrong} (or none if -1) gets a digest
   * of other bytes.
   */
  private Descriptor table(byte[] data, int wrong) {
    ChunkDigestTable.Builder b = new ChunkDigestTable.Builder();
    for (int off = 0, i = 0; off < data.length; off += CHUNK, i++) {
      byte[] chunk = Arrays.copyOfRange(data, off, Math.min(off + CHUNK, data.length));
      byte[] padded = Arrays.copyOf(chunk, (int) AlignedBuffers.roundUp(chunk.length, 4096));
      if (i == wrong) {
        padded[0] ^= 1;
      }
      b.add(padded.length, Digest.sha256().digest(padded));
    }
    return source.add(b.build().encode(), MediaTypes.CHUNK_DIGESTS);
  }

  @Test
  void aCacheDirWithATableVerifiesEveryFetchBeforeItIsWritten() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(4 * CHUNK, 14);
    Descriptor blob = source.add(data, "x");
    Descriptor table = table(data, 2);
    FetchCore stored =
        new FetchCore(
            TestFetch.settings(CHUNK, 4 * CHUNK),
            stats,
            BlobCacheDir.tablesDir(dir.resolve("cache")));
    try (BlobCacheDir cache = BlobCacheDir.open(dir.resolve("cache"), stored)) {
      BlobCacheFile f = cache.file(TestFetch.ref(blob, table), source);
      assertTrue(f.fetcher().join().verifying());
      f.ensure(0, 2 * CHUNK).get(5, TimeUnit.SECONDS);
      assertArrayEquals(Arrays.copyOf(data, 2 * CHUNK), read(f, 0, 2 * CHUNK));
      ExpectedLogs.severe("integrity: blob " + blob.digest() + " bytes " + 2 * CHUNK + "+" + CHUNK);
      Exception e =
          assertThrows(Exception.class, () -> f.ensure(2 * CHUNK, 1).get(5, TimeUnit.SECONDS));
      assertTrue(
          String.valueOf(e.getCause()).contains("fail their chunk digest"),
          String.valueOf(e.getCause()));
      assertFalse(f.isCached(2 * CHUNK, 1), "bytes that fail their digest are never cached");
      assertEquals(2, stats.chunksVerified.sum());
    }
    Path p = dir.resolve("cache").resolve("blobs/sha256").resolve(blob.digest().hex());
    byte[] onDisk = Files.readAllBytes(p);
    for (int i = 2 * CHUNK; i < 3 * CHUNK; i++) {
      assertEquals(0, onDisk[i], "nothing written for the bad chunk");
    }

    // The table was kept beside the cache: a restart reads it locally; a damaged copy is fetched
    // again.
    LongSupplier tableReads =
        () -> source.requests.stream().filter(r -> r.blob().equals(table.digest())).count();
    long reads = tableReads.getAsLong();
    try (FetchCore again =
            new FetchCore(
                TestFetch.settings(CHUNK, 4 * CHUNK),
                stats,
                BlobCacheDir.tablesDir(dir.resolve("cache")));
        BlobCacheDir cache = BlobCacheDir.open(dir.resolve("cache"), again)) {
      assertTrue(cache.file(TestFetch.ref(blob, table), source).fetcher().join().verifying());
    }
    assertEquals(reads, tableReads.getAsLong(), "table from the local copy");
    Path copy = dir.resolve("cache/tables/" + table.digest().hex());
    byte[] t = Files.readAllBytes(copy);
    t[40] ^= 1;
    Files.write(copy, t);
    try (FetchCore again =
            new FetchCore(
                TestFetch.settings(CHUNK, 4 * CHUNK),
                stats,
                BlobCacheDir.tablesDir(dir.resolve("cache")));
        BlobCacheDir cache = BlobCacheDir.open(dir.resolve("cache"), again)) {
      assertTrue(cache.file(TestFetch.ref(blob, table), source).fetcher().join().verifying());
    }
    assertEquals(reads + 1, tableReads.getAsLong(), "a damaged copy is not trusted");
    assertEquals(table.digest(), Digest.of(Files.readAllBytes(copy)), "and is replaced");
  }

  @Test
  void aMalformedTableOrOneForAnotherBlobIsRefusedUpFront() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(2 * CHUNK, 15);
    Descriptor blob = source.add(data, "x");
    Descriptor good = table(data, -1);
    Descriptor garbage = source.add("not a table".getBytes(), MediaTypes.CHUNK_DIGESTS);
    Descriptor otherBlob = source.add(MemoryBlobSource.randomBytes(3 * CHUNK, 16), "x");
    try (BlobCacheDir cache = cache()) {
      CompletionException e =
          assertThrows(
              CompletionException.class,
              () -> cache.file(TestFetch.ref(blob, garbage), source).fetcher().join());
      assertTrue(e.getCause().getMessage().contains("table"), e.getCause().getMessage());
      CompletionException sized =
          assertThrows(
              CompletionException.class,
              () -> cache.file(TestFetch.ref(otherBlob, good), source).fetcher().join());
      assertTrue(sized.getCause().getMessage().contains("blob"), sized.getCause().getMessage());
      BlobCacheFile ok = cache.file(TestFetch.ref(blob, good), source);
      assertTrue(ok.fetcher().join().verifying());
      assertThrows(
          IOException.class, () -> read(ok, 0, 1), "nothing cached before a verified fetch");
    }
  }
}

package dev.lazypull.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Descriptor;
import dev.lazypull.sys.AlignedBuffers;
import dev.lazypull.testing.MemoryBlobSource;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BlobCacheFileTest {
  private static final int CHUNK = 64 << 10;
  @TempDir Path dir;
  private final ExecutorService pool = Executors.newFixedThreadPool(4);
  private final MemoryBlobSource source = new MemoryBlobSource();
  private final FetchStats stats = new FetchStats();
  private final FetchContext ctx = new FetchContext(pool, CHUNK, 4 * CHUNK, stats,
      () -> AlignedBuffers.allocate(CHUNK));

  @AfterEach
  void stop() {
    pool.shutdownNow();
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
    try (BlobCacheFile f = BlobCacheFile.open(dir.resolve("b"), blob, source, ctx)) {
      assertEquals(AlignedBuffers.roundUp(data.length, 4096), Files.size(f.path()), "sized to the padded blob");
      assertThrows(IOException.class, () -> read(f, 0, 10), "an uncached range is an error, never zeros");
      f.ensure(CHUNK + 5, 10).get(5, TimeUnit.SECONDS);
      assertEquals(1, source.requests.size());
      assertArrayEquals(Arrays.copyOfRange(data, CHUNK, 2 * CHUNK), read(f, CHUNK, CHUNK));
      assertTrue(f.isCached(CHUNK, CHUNK));
      assertFalse(f.isCached(CHUNK, CHUNK + 1));
      f.ensure(5 * CHUNK, 4096).get(5, TimeUnit.SECONDS); // the short last chunk, zero-padded to 4096
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
    Path p = dir.resolve("b");
    try (BlobCacheFile f = BlobCacheFile.open(p, blob, source, ctx)) {
      CompletableFuture.allOf(f.ensure(0, 1), f.ensure(3 * CHUNK, 2 * CHUNK)).get(5, TimeUnit.SECONDS);
    }
    int fetched = source.requests.size();
    try (BlobCacheFile f = BlobCacheFile.open(p, blob, source, ctx)) {
      assertEquals(3, f.map().readyCount());
      assertTrue(f.map().isReady(0) && f.map().isReady(3) && f.map().isReady(4));
      f.ensure(3 * CHUNK, 2 * CHUNK).get(5, TimeUnit.SECONDS);
      assertEquals(fetched, source.requests.size(), "cached chunks are not fetched again after a restart");
      assertArrayEquals(Arrays.copyOfRange(data, 3 * CHUNK, 5 * CHUNK), read(f, 3 * CHUNK, 2 * CHUNK));
    }
  }

  @Test
  void aPartlyWrittenChunkIsNotTakenAsCached() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(4 * CHUNK, 9);
    Descriptor blob = source.add(data, "x");
    Path p = dir.resolve("b");
    try (RandomAccessFile raf = new RandomAccessFile(p.toFile(), "rw")) { // a crash half-way through chunk 1
      raf.setLength(4 * CHUNK);
      raf.seek(CHUNK);
      raf.write(data, CHUNK, CHUNK / 2);
    }
    try (BlobCacheFile f = BlobCacheFile.open(p, blob, source, ctx)) {
      assertEquals(0, f.map().readyCount());
      f.ensure(CHUNK, 1).get(5, TimeUnit.SECONDS);
      assertArrayEquals(Arrays.copyOfRange(data, CHUNK, 2 * CHUNK), read(f, CHUNK, CHUNK));
    }
  }

  @Test
  void aWrongSizedFileIsCutToTheBlobAndAFileIsOwnedByOneOpener() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(2 * CHUNK, 10);
    Descriptor blob = source.add(data, "x");
    Path p = dir.resolve("b");
    Files.write(p, new byte[3 * CHUNK]);
    try (BlobCacheFile f = BlobCacheFile.open(p, blob, source, ctx)) {
      assertEquals(2 * CHUNK, Files.size(p));
      IOException busy = assertThrows(IOException.class, () -> BlobCacheFile.open(p, blob, source, ctx));
      assertTrue(busy.getMessage().contains("in use"), busy.getMessage());
    }
    BlobCacheFile.open(p, blob, source, ctx).close(); // the lock went with the close
  }

  @Test
  void concurrentMissesShareOneFetchAndFailuresLeaveChunksMissing() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(4 * CHUNK, 11);
    Descriptor blob = source.add(data, "x");
    try (BlobCacheFile f = BlobCacheFile.open(dir.resolve("b"), blob, source, ctx)) {
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
    BlobCacheFile f = BlobCacheFile.open(dir.resolve("b"), blob, source, ctx);
    f.ensure(0, 1).get(5, TimeUnit.SECONDS);
    f.close();
    IOException e = assertThrows(IOException.class, () -> read(f, 0, 10));
    assertTrue(e.getMessage().contains("closed"), e.getMessage());
  }

  @Test
  void aCacheDirSharesOneFilePerDigest() throws Exception {
    Descriptor blob = source.add(MemoryBlobSource.randomBytes(CHUNK, 13), "x");
    try (BlobCacheDir cache = BlobCacheDir.open(dir.resolve("cache"), ctx)) {
      BlobCacheFile a = cache.file(blob, source);
      assertSame(a, cache.file(blob, source));
      assertEquals(cache.pathOf(blob.digest()), a.path());
      assertTrue(a.path().toString().endsWith("sha256/" + blob.digest().hex()));
      Descriptor lying = new Descriptor("x", blob.digest(), blob.size() + 1);
      assertThrows(IOException.class, () -> cache.file(lying, source));
    }
  }

  /** A table over {@code data} in CHUNK entries; entry {@code wrong} (or none if -1) gets a digest of other bytes. */
  private Descriptor table(byte[] data, int wrong) {
    dev.lazypull.image.ChunkDigestTable.Builder b = new dev.lazypull.image.ChunkDigestTable.Builder();
    for (int off = 0, i = 0; off < data.length; off += CHUNK, i++) {
      byte[] chunk = Arrays.copyOfRange(data, off, Math.min(off + CHUNK, data.length));
      byte[] padded = Arrays.copyOf(chunk, (int) AlignedBuffers.roundUp(chunk.length, 4096));
      if (i == wrong) {
        padded[0] ^= 1;
      }
      b.add(padded.length, dev.lazypull.image.Digest.sha256().digest(padded));
    }
    return source.add(b.build().encode(), dev.lazypull.image.MediaTypes.CHUNK_DIGESTS);
  }

  @Test
  void aCacheDirWithATableVerifiesEveryFetchBeforeItIsWritten() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(4 * CHUNK, 14);
    Descriptor blob = source.add(data, "x");
    Descriptor table = table(data, 2);
    try (BlobCacheDir cache = BlobCacheDir.open(dir.resolve("cache"), ctx)) {
      BlobCacheFile f = cache.file(blob, source, table);
      assertTrue(f.verifying());
      f.ensure(0, 2 * CHUNK).get(5, TimeUnit.SECONDS);
      assertArrayEquals(Arrays.copyOf(data, 2 * CHUNK), read(f, 0, 2 * CHUNK));
      dev.lazypull.testing.ExpectedLogs.severe(
          "integrity: blob " + blob.digest() + " bytes " + 2 * CHUNK + "+" + CHUNK);
      Exception e = assertThrows(Exception.class, () -> f.ensure(2 * CHUNK, 1).get(5, TimeUnit.SECONDS));
      assertTrue(String.valueOf(e.getCause()).contains("fail their chunk digest"), String.valueOf(e.getCause()));
      assertFalse(f.isCached(2 * CHUNK, 1), "bytes that fail their digest are never cached");
      assertEquals(2, stats.chunksVerified.sum());
    }
    Path p = dir.resolve("cache").resolve("sha256").resolve(blob.digest().hex());
    byte[] onDisk = Files.readAllBytes(p);
    for (int i = 2 * CHUNK; i < 3 * CHUNK; i++) {
      assertEquals(0, onDisk[i], "nothing written for the bad chunk");
    }

    // The table was kept beside the cache: a restart reads it locally; a damaged copy is fetched again.
    java.util.function.LongSupplier tableReads = () -> source.requests.stream()
        .filter(r -> r.blob().equals(table.digest())).count();
    long reads = tableReads.getAsLong();
    try (BlobCacheDir cache = BlobCacheDir.open(dir.resolve("cache"), ctx)) {
      assertTrue(cache.file(blob, source, table).verifying());
    }
    assertEquals(reads, tableReads.getAsLong(), "table from the local copy");
    Path copy = dir.resolve("cache/tables/" + table.digest().hex());
    byte[] t = Files.readAllBytes(copy);
    t[40] ^= 1;
    Files.write(copy, t);
    try (BlobCacheDir cache = BlobCacheDir.open(dir.resolve("cache"), ctx)) {
      assertTrue(cache.file(blob, source, table).verifying());
    }
    assertEquals(reads + 1, tableReads.getAsLong(), "a damaged copy is not trusted");
    assertEquals(table.digest(), dev.lazypull.image.Digest.of(Files.readAllBytes(copy)), "and is replaced");
  }

  @Test
  void aMalformedTableOrOneForAnotherBlobIsRefusedUpFront() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(2 * CHUNK, 15);
    Descriptor blob = source.add(data, "x");
    Descriptor good = table(data, -1);
    Descriptor garbage = source.add("not a table".getBytes(), dev.lazypull.image.MediaTypes.CHUNK_DIGESTS);
    Descriptor otherBlob = source.add(MemoryBlobSource.randomBytes(3 * CHUNK, 16), "x");
    try (BlobCacheDir cache = BlobCacheDir.open(dir.resolve("cache"), ctx)) {
      IOException e = assertThrows(IOException.class, () -> cache.file(blob, source, garbage));
      assertTrue(e.getMessage().contains("table"), e.getMessage());
      IOException sized = assertThrows(IOException.class, () -> cache.file(otherBlob, source, good));
      assertTrue(sized.getMessage().contains("blob"), sized.getMessage());
      assertTrue(cache.file(blob, source, good).verifying());
    }
  }
}

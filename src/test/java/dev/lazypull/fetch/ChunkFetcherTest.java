package dev.lazypull.fetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Descriptor;
import dev.lazypull.sys.AlignedBuffers;
import dev.lazypull.sys.Posix;
import dev.lazypull.testing.MemoryBlobSource;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class ChunkFetcherTest {
  private final ExecutorService pool = Executors.newFixedThreadPool(4);
  private final MemoryBlobSource source = new MemoryBlobSource();
  private final FetchStats stats = new FetchStats();

  /** Records writes into a byte array, enforcing the O_DIRECT alignment rules. */
  static final class MemoryWriter implements ChunkSink {
    final byte[] file;
    final List<long[]> writes = new ArrayList<>();

    MemoryWriter(long size) {
      file = new byte[(int) AlignedBuffers.roundUp(size, 4096)];
    }

    @Override
    public synchronized void write(ByteBuffer buf, long offset) throws IOException {
      if (offset % 4096 != 0 || buf.remaining() % 4096 != 0 || Posix.address(buf) % 4096 != 0) {
        throw new IOException("misaligned write " + offset + "+" + buf.remaining());
      }
      buf.duplicate().get(file, (int) offset, buf.remaining());
      writes.add(new long[] {offset, buf.remaining()});
    }

    @Override
    public boolean isOpen() {
      return true;
    }

    @Override
    public long seekData(long offset) {
      return -1; // nothing was there before this fetcher
    }

    @Override
    public long seekHole(long offset) {
      return offset;
    }
  }

  private ChunkFetcher fetcher(
      Descriptor blob, MemoryWriter writer, int chunkSize, int mergeLimit, int bufSize) {
    FetchSettings settings =
        new FetchSettings(
            4,
            chunkSize,
            Math.max(chunkSize, mergeLimit),
            0,
            Duration.ofSeconds(10),
            Math.max(4096, bufSize));
    return new ChunkFetcher(
        blob,
        null,
        source,
        writer,
        new ChunkMap(blob.size(), chunkSize),
        pool,
        settings,
        stats,
        () -> AlignedBuffers.allocate(bufSize));
  }

  @AfterEach
  void stop() {
    pool.shutdownNow();
  }

  @Test
  void fetchesExactlyTheMissingChunksAndPadsTheTail() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(3 * 65536 + 1000, 1);
    Descriptor blob = source.add(data, "x");
    MemoryWriter w = new MemoryWriter(data.length);
    ChunkFetcher f = fetcher(blob, w, 65536, 65536, 65536);
    f.ensure(65536 + 10, 20).get(5, TimeUnit.SECONDS);
    assertEquals(List.of(new MemoryBlobSource.Range(blob.digest(), 65536, 65536)), source.requests);
    assertTrue(f.map().isReady(1));
    assertFalse(f.map().isReady(0));
    f.ensure(3 * 65536, 4096).get(5, TimeUnit.SECONDS); // the short last chunk
    assertEquals(
        new MemoryBlobSource.Range(blob.digest(), 3 * 65536, 1000), source.requests.get(1));
    assertArrayEquals(
        Arrays.copyOfRange(data, 65536, 2 * 65536), Arrays.copyOfRange(w.file, 65536, 2 * 65536));
    assertArrayEquals(
        Arrays.copyOfRange(data, 3 * 65536, data.length),
        Arrays.copyOfRange(w.file, 3 * 65536, data.length));
    for (int i = data.length; i < w.file.length; i++) {
      assertEquals(0, w.file[i], "tail padding must be zero");
    }
    // present chunks are not fetched again
    f.ensure(65536, 65536).get(5, TimeUnit.SECONDS);
    assertEquals(2, source.requests.size());
  }

  @Test
  void adjacentMissingChunksMergeUpToTheLimit() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(10 * 4096, 2);
    Descriptor blob = source.add(data, "x");
    MemoryWriter w = new MemoryWriter(data.length);
    ChunkFetcher f = fetcher(blob, w, 4096, 4 * 4096, 8192);
    f.ensure(4096 * 2, 4096).get(5, TimeUnit.SECONDS); // chunk 2 present: splits the runs
    source.requests.clear();
    f.ensure(0, data.length).get(5, TimeUnit.SECONDS);
    assertEquals(
        List.of(
            new MemoryBlobSource.Range(blob.digest(), 0, 2 * 4096),
            new MemoryBlobSource.Range(blob.digest(), 3 * 4096, 4 * 4096),
            new MemoryBlobSource.Range(blob.digest(), 7 * 4096, 3 * 4096)),
        sorted(source.requests));
    assertArrayEquals(data, Arrays.copyOf(w.file, data.length));
    assertTrue(f.map().allReady());
  }

  private static List<MemoryBlobSource.Range> sorted(List<MemoryBlobSource.Range> r) {
    List<MemoryBlobSource.Range> copy = new ArrayList<>(r);
    copy.sort((a, b) -> Long.compare(a.offset(), b.offset()));
    return copy;
  }

  @Test
  void concurrentMissesOfOneChunkShareOneFetch() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(1 << 20, 3);
    Descriptor blob = source.add(data, "x");
    MemoryWriter w = new MemoryWriter(data.length);
    ChunkFetcher f = fetcher(blob, w, 1 << 20, 1 << 20, 1 << 20);
    source.gate = new CountDownLatch(1);
    List<CompletableFuture<Void>> waits = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      waits.add(f.ensure(i * 4096L, 4096));
    }
    assertEquals(1, f.inflightCount());
    source.gate.countDown();
    CompletableFuture.allOf(waits.toArray(new CompletableFuture<?>[0])).get(5, TimeUnit.SECONDS);
    assertEquals(1, source.requests.size());
    assertEquals(49, stats.chunksDeduplicated.sum());
    assertArrayEquals(data, w.file);
  }

  @Test
  void failureFailsEveryWaiterAndALaterRequestRetries() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(8192, 4);
    Descriptor blob = source.add(data, "x");
    MemoryWriter w = new MemoryWriter(data.length);
    ChunkFetcher f = fetcher(blob, w, 4096, 8192, 8192);
    source.failWith = new IOException("registry down");
    CompletableFuture<Void> a = f.ensure(0, 8192);
    ExecutionException e = assertThrows(ExecutionException.class, () -> a.get(5, TimeUnit.SECONDS));
    assertTrue(e.getCause().getMessage().contains("registry down"));
    assertEquals(0, f.inflightCount());
    assertFalse(f.map().isReady(0));
    source.failWith = null;
    f.ensure(0, 8192).get(5, TimeUnit.SECONDS);
    assertArrayEquals(data, w.file);
  }

  @Test
  void aShortBodyNeverMarksAChunkReady() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(3 * 4096, 5);
    Descriptor blob = source.add(data, "x");
    MemoryWriter w = new MemoryWriter(data.length);
    ChunkFetcher f = fetcher(blob, w, 4096, 3 * 4096, 4096);
    source.truncateBy = 100;
    assertThrows(ExecutionException.class, () -> f.ensure(0, 3 * 4096).get(5, TimeUnit.SECONDS));
    assertTrue(
        f.map().isReady(0) && f.map().isReady(1),
        "chunks completed before the short end stay ready");
    assertFalse(f.map().isReady(2), "the chunk that ended early is not ready");
    assertEquals(1, stats.fetchFailures.sum());
  }

  @Test
  void rangesPastTheEndCompleteWithoutFetching() throws Exception {
    Descriptor blob = source.add(MemoryBlobSource.randomBytes(4096, 6), "x");
    ChunkFetcher f = fetcher(blob, new MemoryWriter(4096), 4096, 4096, 4096);
    f.ensure(8192, 4096).get(1, TimeUnit.SECONDS);
    f.ensure(0, 0).get(1, TimeUnit.SECONDS);
    assertTrue(source.requests.isEmpty());
  }

  @Test
  void largeChunksStreamThroughASmallerBuffer() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes((1 << 20) + 5000, 7);
    Descriptor blob = source.add(data, "x");
    MemoryWriter w = new MemoryWriter(data.length);
    ChunkFetcher f = fetcher(blob, w, 1 << 20, 4 << 20, 64 << 10);
    f.ensure(0, data.length).get(5, TimeUnit.SECONDS);
    assertEquals(1, source.requests.size());
    assertArrayEquals(data, Arrays.copyOf(w.file, data.length));
    for (long[] wr : w.writes) {
      assertTrue(wr[1] <= 64 << 10);
    }
  }
}

package dev.lazypull.prefetch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.fetch.BlobCacheDir;
import dev.lazypull.fetch.BlobCacheFile;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.image.Descriptor;
import dev.lazypull.testing.MemoryBlobSource;
import dev.lazypull.testing.TestFetch;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CachePrefetchTest {
  private static final int CHUNK = 64 << 10;
  @TempDir Path dir;
  private final MemoryBlobSource source = new MemoryBlobSource();
  private final FetchCore core = TestFetch.core(CHUNK, 4 * CHUNK);

  @AfterEach
  void stop() {
    core.close();
  }

  /** Pieces of two chunks, at most three in flight. */
  private static CachePrefetch prefetch(List<CachePrefetch.Target> targets) {
    return new CachePrefetch(targets, 2 * CHUNK, 3);
  }

  @Test
  void fillsWholeFilesAndRangesCountingEachChunkOnceAndSkippingCachedOnes() throws Exception {
    Descriptor a = source.add(MemoryBlobSource.randomBytes(5 * CHUNK + 100, 1), "x");
    Descriptor b = source.add(MemoryBlobSource.randomBytes(8 * CHUNK, 2), "x");
    try (BlobCacheDir cache = BlobCacheDir.open(dir, core)) {
      BlobCacheFile fa = cache.file(TestFetch.ref(a), source);
      BlobCacheFile fb = cache.file(TestFetch.ref(b), source);
      fb.ensure(0, 1).get(5, TimeUnit.SECONDS); // chunk 0 cached before
      int before = source.requests.size();
      // Two files' ranges in chunks 0 and 1 of b (overlapping): chunks 0..1 once each.
      CachePrefetch p =
          prefetch(
              List.of(
                  new CachePrefetch.Target(fa, null),
                  new CachePrefetch.Target(
                      fb, List.of(new long[] {10, 100}, new long[] {50, CHUNK}))));
      assertEquals(5 * CHUNK + 100 + 2 * CHUNK, p.plannedBytes());
      assertEquals(CHUNK, p.readyBytes());
      p.start().get(5, TimeUnit.SECONDS);
      assertEquals(p.plannedBytes(), p.readyBytes());
      assertEquals(List.of(), p.errors());
      assertTrue(TestFetch.map(fa).allReady());
      assertTrue(
          TestFetch.map(fb).isReady(1) && !TestFetch.map(fb).isReady(2),
          "only the ranges asked for");
      assertTrue(
          source.requests.subList(before, source.requests.size()).stream()
              .noneMatch(r -> r.blob().equals(b.digest()) && r.offset() == 0),
          "cached chunk 0 not fetched again");
      assertTrue(
          source.requests.subList(before, source.requests.size()).stream()
              .allMatch(r -> r.length() <= 2 * CHUNK),
          "one ranged read per piece at most: " + source.requests);
      assertTrue(p.concurrency() >= 1 && p.concurrency() <= 3, "" + p.concurrency());
    }
  }

  @Test
  void failuresAreListedAndLeaveTheirChunksMissing() throws Exception {
    Descriptor a = source.add(MemoryBlobSource.randomBytes(3 * CHUNK, 3), "x");
    try (BlobCacheDir cache = BlobCacheDir.open(dir, core)) {
      source.failWith = new IOException("registry down");
      CachePrefetch p =
          prefetch(List.of(new CachePrefetch.Target(cache.file(TestFetch.ref(a), source), null)));
      p.start().get(5, TimeUnit.SECONDS);
      assertEquals(2, p.errors().size(), "one line per failed read: " + p.errors());
      assertTrue(
          p.errors().stream()
              .allMatch(e -> e.contains(a.digest().toString()) && e.contains("registry down")),
          p.errors().toString());
      assertEquals(0, p.readyBytes());
    }
  }
}

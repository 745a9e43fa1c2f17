package dev.lazypull.fetch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.testing.MemoryBlobSource;
import java.io.IOException;
import java.util.HexFormat;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * One origin's stalled or failing fetches do not hold up another's: fetch threads and table loads
 * per origin.
 */
class FetchIsolationTest {
  @Test
  void originsAreRegistriesAsWrittenOrLocal() {
    assertEquals("reg.example:5000", FetchPools.origin("REG.example:5000/team/app:v1"));
    assertEquals("docker.io", FetchPools.origin("busybox"));
    assertEquals("docker.io", FetchPools.origin("registry-1.docker.io/library/busybox:1"));
    assertEquals(FetchPools.LOCAL, FetchPools.origin("oci:/var/lib/images/app:v1"));
  }

  @Test
  void aStalledRegistryDoesNotDelayFetchesFromAnother() throws Exception {
    try (FetchPools pools = new FetchPools(2)) {
      ExecutorService stalled = pools.forReference("slow.example/app:v1");
      assertSame(stalled, pools.forReference("slow.example/other@sha256:" + "a".repeat(64)));
      CountDownLatch release = new CountDownLatch(1);
      for (int i = 0;
          i < 6;
          i++) { // every thread of the slow registry blocked, more queued behind them
        stalled.execute(
            () -> {
              try {
                release.await();
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            });
      }
      ExecutorService healthy = pools.forReference("fast.example/app:v1");
      assertNotSame(stalled, healthy);
      CompletableFuture<String> served = CompletableFuture.supplyAsync(() -> "served", healthy);
      assertEquals("served", served.get(5, TimeUnit.SECONDS));
      CompletableFuture<String> local =
          CompletableFuture.supplyAsync(() -> "local", pools.forOrigin(FetchPools.LOCAL));
      assertEquals("local", local.get(5, TimeUnit.SECONDS));
      release.countDown();
    }
  }

  @Test
  void aTableDownloadFailingFromOneSourceDoesNotFailAnothersLoadOfTheSameTable() throws Exception {
    MemoryBlobSource good = new MemoryBlobSource();
    MemoryBlobSource failing = new MemoryBlobSource();
    byte[] blobBytes = MemoryBlobSource.randomBytes(8192, 3);
    Descriptor blob = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(blobBytes), blobBytes.length);
    ChunkDigestTable.Builder b = new ChunkDigestTable.Builder();
    b.add(8192, HexFormat.of().parseHex(Digest.of(blobBytes).hex()));
    byte[] encoded = b.build().encode();
    Descriptor table = good.add(encoded, MediaTypes.CHUNK_DIGESTS);
    failing.add(encoded, MediaTypes.CHUNK_DIGESTS);
    failing.gate = new CountDownLatch(1);
    failing.failWith = new IOException("registry A is down");
    ChunkTables tables = new ChunkTables(null);
    try (FetchPools pools = new FetchPools(2)) {
      CompletableFuture<ChunkDigestTable> fromA =
          tables.get(table, blob, failing, pools.forOrigin("a"));
      CompletableFuture<ChunkDigestTable> fromB =
          tables.get(table, blob, good, pools.forOrigin("b"));
      assertEquals(
          1, fromB.get(5, TimeUnit.SECONDS).size(), "B's load did not wait for or share A's");
      failing.gate.countDown();
      ExecutionException e =
          assertThrows(ExecutionException.class, () -> fromA.get(5, TimeUnit.SECONDS));
      assertEquals("registry A is down", e.getCause().getMessage());
      assertSame(
          fromB.get(),
          tables.get(table, blob, good, pools.forOrigin("b")).get(),
          "loaded once per source");
    }
  }
}

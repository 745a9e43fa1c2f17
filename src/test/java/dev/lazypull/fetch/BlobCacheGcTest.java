package dev.lazypull.fetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Descriptor;
import dev.lazypull.sys.Posix;
import dev.lazypull.testing.Await;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.MemoryBlobSource;
import dev.lazypull.testing.TestFetch;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Arrays;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BlobCacheGcTest {
  private static final int CHUNK = 64 << 10;
  @TempDir Path dir;
  private final MemoryBlobSource source = new MemoryBlobSource();
  private final FetchCore core = TestFetch.core(CHUNK, 4 * CHUNK);

  @AfterEach
  void stop() {
    core.close();
  }

  private BlobCacheDir open() throws IOException {
    return BlobCacheDir.open(dir, core);
  }

  /**
   * A blob of {@code chunks} chunks, fully cached, its file closed and last used {@code
   * minutesAgo}.
   */
  private Descriptor cached(BlobCacheDir cache, int seed, int chunks, int minutesAgo)
      throws Exception {
    Descriptor blob = source.add(MemoryBlobSource.randomBytes(chunks * CHUNK, seed), "x");
    try (BlobCacheDir user = open()) { // a user that has come and gone
      user.file(TestFetch.ref(blob), source).ensure(0, blob.size()).get(5, TimeUnit.SECONDS);
    }
    Files.setLastModifiedTime(
        cache.pathOf(blob.digest()),
        FileTime.fromMillis(System.currentTimeMillis() - minutesAgo * 60_000L));
    return blob;
  }

  @Test
  void removesLeastRecentlyUsedUnusedFilesUntilWithinBudget() throws Exception {
    try (BlobCacheDir cache = open()) {
      Descriptor oldest = cached(cache, 1, 4, 30);
      Descriptor inUse = cached(cache, 2, 4, 20);
      Descriptor older = cached(cache, 3, 4, 10);
      Descriptor newest = cached(cache, 4, 4, 1);
      long each = Posix.allocatedBytes(cache.pathOf(newest.digest()).toString());
      assertTrue(each >= 4L * CHUNK, "fully cached files take their size on disk: " + each);
      assertEquals(4 * each, BlobCacheGc.usage(dir));
      try (BlobCacheDir holder = open()) {
        BlobCacheFile held = holder.file(TestFetch.ref(inUse), source);
        Files.setLastModifiedTime(
            cache.pathOf(inUse.digest()), FileTime.fromMillis(0)); // oldest of all, but open

        BlobCacheGc.Report r = BlobCacheGc.collect(dir, 2 * each);

        assertEquals(4 * each, r.usageBefore());
        assertEquals(2 * each, r.usageAfter());
        assertEquals(2, r.removed());
        assertEquals(1, r.inUse(), "the open file was skipped");
        assertTrue(Files.exists(held.path()), "a file in use is never removed");
        assertFalse(Files.exists(cache.pathOf(oldest.digest())));
        assertFalse(Files.exists(cache.pathOf(older.digest())));
        assertTrue(Files.exists(cache.pathOf(newest.digest())));
        assertEquals(
            2 * each, BlobCacheGc.usage(dir), "usage is measured again, not only computed");
      }
    }
  }

  @Test
  void aFileLockedByAnotherOwnerIsNotRemoved() throws Exception {
    try (BlobCacheDir cache = open()) {
      Descriptor blob = cached(cache, 1, 2, 30);
      Path path = cache.pathOf(blob.digest());
      int fd = Posix.open(path.toString(), Posix.O_RDONLY | Posix.O_CLOEXEC, 0);
      try {
        assertTrue(Posix.tryLockShared(fd, path.toString())); // as another process's user holds it
        ExpectedLogs.warning("over its budget of 1: the rest is in use");
        BlobCacheGc.Report r = BlobCacheGc.collect(dir, 1);
        assertEquals(0, r.removed());
        assertEquals(1, r.inUse());
        assertTrue(Files.exists(path));
      } finally {
        Posix.close(fd);
      }
      assertEquals(1, BlobCacheGc.collect(dir, 1).removed(), "removed once its owner let go");
    }
  }

  @Test
  void withinBudgetOrWithoutOneNothingIsRemoved() throws Exception {
    try (BlobCacheDir cache = open()) {
      cached(cache, 1, 2, 5);
      cached(cache, 2, 2, 5);
      long usage = BlobCacheGc.usage(dir);
      assertEquals(0, BlobCacheGc.collect(dir, usage).removed());
      assertEquals(0, BlobCacheGc.collect(dir, 0).removed());
      assertEquals(usage, BlobCacheGc.usage(dir));
    }
  }

  @Test
  void aRemovedBlobIsFetchedAgainOnItsNextUse() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(3 * CHUNK, 9);
    Descriptor blob = source.add(data, "x");
    Path path = dir.resolve("blobs/sha256").resolve(blob.digest().hex());
    try (BlobCacheDir cache = open()) {
      cache.file(TestFetch.ref(blob), source).ensure(0, blob.size()).get(5, TimeUnit.SECONDS);
    }
    assertTrue(BlobCacheGc.removeIfUnused(path));
    int before = source.requests.size();
    try (BlobCacheDir cache = open()) {
      BlobCacheFile f = cache.file(TestFetch.ref(blob), source);
      assertFalse(f.isCached(0, CHUNK), "nothing left of the removed file");
      f.ensure(0, blob.size()).get(5, TimeUnit.SECONDS);
      ByteBuffer buf = ByteBuffer.allocateDirect(data.length);
      f.read(buf, 0);
      byte[] got = new byte[data.length];
      buf.flip().get(got);
      assertArrayEquals(data, got);
      assertTrue(source.requests.size() > before, "fetched again");
    }
  }

  @Test
  void anOwnerOpeningWhileTheCollectorHoldsTheLockWaitsInsteadOfFailing() throws Exception {
    Descriptor blob = source.add(MemoryBlobSource.randomBytes(CHUNK, 5), "x");
    Path path = dir.resolve("blobs/sha256").resolve(blob.digest().hex());
    Files.createDirectories(path.getParent());
    Files.write(path, new byte[0]);
    BlobCacheDir cache = open();
    int fd = Posix.open(path.toString(), Posix.O_RDONLY | Posix.O_CLOEXEC, 0);
    try {
      assertTrue(
          Posix.tryLockExclusive(fd, path.toString())); // what the collector holds while it deletes
      FutureTask<BlobCacheFile> opened =
          new FutureTask<>(() -> cache.file(TestFetch.ref(blob), source));
      Thread opener = new Thread(opened, "opener");
      opener.setDaemon(true);
      opener.start();
      // open found the file locked and is pausing before it tries again (the pause is the only
      // timed wait in it)
      Await.until(
          () ->
              opener.getState() == Thread.State.TIMED_WAITING
                  && Arrays.stream(opener.getStackTrace())
                      .anyMatch(f -> f.getClassName().equals(BlobCacheFile.class.getName())),
          "the opener to find the file locked and wait to retry");
      assertFalse(opened.isDone(), "waits for the lock");
      Files.delete(path); // the collector's delete, then its close releases the lock
      Posix.close(fd);
      fd = -1;
      try (cache) {
        BlobCacheFile f = opened.get(5, TimeUnit.SECONDS);
        f.ensure(0, CHUNK).get(5, TimeUnit.SECONDS);
        // had it kept the deleted file, what it wrote would be invisible at the path
        assertTrue(
            Posix.allocatedBytes(path.toString()) >= CHUNK,
            "the owner writes the file at the path");
      }
    } finally {
      if (fd >= 0) {
        Posix.closeQuietly(fd);
      }
    }
  }

  @Test
  void usageCountsTablesButOnlyBlobFilesAreRemoved() throws Exception {
    Files.createDirectories(dir.resolve("tables"));
    Files.write(dir.resolve("tables").resolve("t"), new byte[8192]);
    long usage = BlobCacheGc.usage(dir);
    assertTrue(usage >= 8192);
    ExpectedLogs.warning("uses " + usage + " bytes, over its budget of 1");
    BlobCacheGc.Report r = BlobCacheGc.collect(dir, 1);
    assertEquals(0, r.removed());
    assertTrue(Files.exists(dir.resolve("tables").resolve("t")));
    assertEquals(usage, r.usageAfter());
  }
}

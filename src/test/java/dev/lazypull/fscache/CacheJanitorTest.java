package dev.lazypull.fscache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.testing.Await;
import dev.lazypull.testing.FakeKernel;
import dev.lazypull.testing.TestTrees;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CacheJanitorTest {
  @TempDir Path tmp;

  private Path file(String volume, String fan, String cookie, int mib) throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("cache/cache/I" + volume + "/@" + fan));
    Path f = dir.resolve("D" + cookie);
    TestTrees.write(f, (long) mib << 20, new Random(mib));
    return f;
  }

  @Test
  void cullsLeastRecentlyUsedUnusedFilesDownToTheBudget() throws Exception {
    FakeKernel kernel = new FakeKernel(tmp);
    Path a = file("erofs,a", "01", "a", 2);
    Path blob = file("erofs,a", "02", "b".repeat(64), 3);
    Path b = file("erofs,b", "03", "b", 2);
    Path c = file("erofs,c", "04", "c", 1);
    List<CacheJanitor.OpenCookie> open = new ArrayList<>();
    CacheJanitor j =
        new CacheJanitor(kernel, tmp.resolve("cache"), tmp.resolve("state"), 4L << 20, () -> open);
    assertTrue(j.usage() >= 8L << 20);
    // touch stamps the wall clock in milliseconds: a new millisecond between touches makes the
    // order strict
    j.touch("erofs,a", "a"); // oldest
    Await.nextMillisecond();
    j.touch("erofs,a", "b".repeat(64));
    Await.nextMillisecond();
    j.touch("erofs,b", "b");
    Await.nextMillisecond();
    j.touch("erofs,c", "c"); // newest
    open.add(new CacheJanitor.OpenCookie("erofs,a", "a", 2L << 20)); // mounted: must survive
    kernel.inUseFiles.add(a);
    CacheJanitor.Report r = j.collect();
    assertTrue(Files.exists(a), "in use");
    assertFalse(Files.exists(blob), "least recently used unused file goes first");
    assertFalse(Files.exists(b));
    assertTrue(Files.exists(c), "stops once within budget");
    assertEquals(2, r.culled());
    assertTrue(r.usageAfter() <= 4L << 20, "usage " + r.usageAfter());
    assertEquals(Path.of("/"), Files.readSymbolicLink(Path.of("/proc/self/cwd")), "cwd restored");
    assertTrue(Files.exists(tmp.resolve("state/cache-usage.json")), "LRU order persisted");
  }

  @Test
  void evictRemovesOneImagesFilesButKeepsSharedBlobs() throws Exception {
    FakeKernel kernel = new FakeKernel(tmp);
    Descriptor shared = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of("s".getBytes()), 4096);
    Descriptor own = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of("o".getBytes()), 4096);
    ImageRecord one =
        new ImageRecord(
            "one",
            "dom",
            "r1",
            Digest.of("1".getBytes()),
            own,
            List.of(shared, own),
            List.of(shared.digest().hex(), own.digest().hex()),
            false);
    ImageRecord two =
        new ImageRecord(
            "two",
            "dom",
            "r2",
            Digest.of("2".getBytes()),
            own,
            List.of(shared),
            List.of(shared.digest().hex()),
            false);
    Path boot = file("erofs,dom", "01", "one", 1);
    Path sharedFile = file("erofs,dom", "02", shared.digest().hex(), 1);
    Path ownFile = file("erofs,dom", "03", own.digest().hex(), 1);
    Path other = file("erofs,dom", "04", "two", 1);
    CacheJanitor j = new CacheJanitor(kernel, tmp.resolve("cache"), null, 0, List::of);
    CacheJanitor.Report r = j.evict(one, List.of(one, two), false);
    assertEquals(2, r.culled());
    assertFalse(Files.exists(boot));
    assertFalse(Files.exists(ownFile));
    assertTrue(Files.exists(sharedFile), "shared with image two");
    assertTrue(Files.exists(other));
    assertEquals(List.of(shared.digest().hex()), r.skipped());
    assertEquals(0, j.collect().culled(), "no budget: collect never culls");
  }
}

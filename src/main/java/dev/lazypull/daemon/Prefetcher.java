package dev.lazypull.daemon;

import dev.lazypull.cache.ChunkMap;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import java.util.logging.Logger;

/**
 * Background prefetch through the kernel objects the daemon holds: it makes ranges present exactly as a READ
 * would (same fetch core, same anon fds), so afterwards the kernel finds the data and sends no READ at all.
 *
 * <p>Always behind on-demand READs: prefetch fetches run on their own small pool (never queued ahead of READs
 * in the shared one), wait while READs are in flight, and are capped in concurrency and bandwidth. A job stops
 * when everything it covers is present, when cancelled, or when its objects close.
 */
final class Prefetcher implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Prefetcher.class.getName());
  /** How long prefetch waits for in-flight READs to drain before going ahead anyway. */
  private static final long YIELD_LIMIT_NANOS = 200_000_000L;

  /** One object to prefetch: whole blob when {@code ranges} is null, else these [offset, length] pairs. */
  record Target(CacheObject object, List<long[]> ranges) {}

  /** A running or finished prefetch of one image. */
  static final class Job {
    final String id;
    final String fsid;
    final AtomicLong plannedBytes = new AtomicLong();
    final AtomicLong doneBytes = new AtomicLong();
    final AtomicLong failedBytes = new AtomicLong();
    final CompletableFuture<Void> done = new CompletableFuture<>();
    volatile boolean cancelled;
    volatile String error;

    Job(String id, String fsid) {
      this.id = id;
      this.fsid = fsid;
    }

    String state() {
      if (!done.isDone()) {
        return "running";
      }
      if (cancelled) {
        return "cancelled";
      }
      return failedBytes.get() > 0 || error != null ? "failed" : "done";
    }
  }

  private final ExecutorService fetchPool;
  private final ThreadPoolExecutor prefetchPool;
  private final ExecutorService drivers;
  private final int concurrency;
  private final BandwidthLimiter limiter;
  private final LongSupplier inflightReads;
  private final int runBytes;
  private final Map<String, Job> jobs = new ConcurrentHashMap<>();

  /** Where whole blobs without digest tables are staged and checked during a full prefetch. */
  private final java.nio.file.Path scratchDir;

  Prefetcher(ExecutorService fetchPool, int concurrency, long bytesPerSecond, int runBytes,
      LongSupplier inflightReads, java.nio.file.Path scratchDir) {
    this.scratchDir = scratchDir;
    this.fetchPool = fetchPool;
    this.concurrency = Math.max(1, concurrency);
    this.limiter = new BandwidthLimiter(bytesPerSecond);
    this.inflightReads = inflightReads;
    this.runBytes = runBytes;
    java.util.concurrent.ThreadFactory numbered = dev.lazypull.sys.DaemonThreads.numbered("lazypull-prefetch-");
    this.prefetchPool = (ThreadPoolExecutor) Executors.newFixedThreadPool(this.concurrency, r -> {
      Thread t = numbered.newThread(r);
      t.setPriority(Thread.MIN_PRIORITY);
      return t;
    });
    this.drivers = Executors.newCachedThreadPool(dev.lazypull.sys.DaemonThreads.named("lazypull-prefetch-driver"));
  }

  /** Starts a job (replacing a finished one with the same id; a running one is returned as is). */
  Job start(String id, String fsid, List<Target> targets) {
    Job existing = jobs.get(id);
    if (existing != null && !existing.done.isDone()) {
      return existing;
    }
    Job job = new Job(id, fsid);
    jobs.put(id, job);
    for (Target t : targets) {
      job.plannedBytes.addAndGet(missingBytes(t));
    }
    drivers.execute(() -> run(job, targets));
    return job;
  }

  List<Job> jobsOf(String fsid) {
    List<Job> out = new ArrayList<>();
    for (Job j : jobs.values()) {
      if (j.fsid.equals(fsid)) {
        out.add(j);
      }
    }
    return out;
  }

  int cancel(String fsid) {
    int n = 0;
    for (Job j : jobsOf(fsid)) {
      if (!j.done.isDone()) {
        j.cancelled = true;
        n++;
      }
    }
    return n;
  }

  private static long missingBytes(Target t) {
    ChunkMap map = t.object().fetcher().map();
    long n = 0;
    for (long[] r : ranges(t)) {
      long end = Math.min(r[0] + r[1], map.paddedSize());
      if (r[0] >= end) {
        continue;
      }
      for (int c = map.chunkOf(r[0]); c <= map.chunkOf(end - 1); c++) {
        if (!map.isReady(c)) {
          n += map.chunkDataEnd(c) - map.chunkStart(c);
        }
      }
    }
    return n;
  }

  private static List<long[]> ranges(Target t) {
    return t.ranges() != null ? t.ranges() : List.of(new long[] {0, t.object().fetcher().map().paddedSize()});
  }

  private void run(Job job, List<Target> targets) {
    Semaphore permits = new Semaphore(concurrency);
    try {
      for (Target t : targets) {
        CacheObject o = t.object();
        if (t.ranges() == null && scratchDir != null && !job.cancelled && needsWholeBlobCheck(o)) {
          prefetchVerifiedWhole(job, o);
          continue;
        }
        ChunkMap map = o.fetcher().map();
        for (long[] r : ranges(t)) {
          long end = Math.min(r[0] + r[1], map.paddedSize());
          int c = r[0] >= end ? Integer.MAX_VALUE : map.chunkOf(r[0]);
          int last = r[0] >= end ? -1 : map.chunkOf(end - 1);
          while (c <= last && !job.cancelled) {
            c = map.nextMissing(c);
            if (c < 0 || c > last) {
              break;
            }
            int runEnd = c;
            while (runEnd < last && !map.isReady(runEnd + 1)
                && map.chunkStart(runEnd + 2) - map.chunkStart(c) <= runBytes) {
              runEnd++;
            }
            long off = map.chunkStart(c);
            long len = map.chunkDataEnd(runEnd) - off;
            yieldToReads();
            limiter.acquire(len);
            permits.acquire();
            if (!o.acquire()) {
              permits.release();
              break; // the object closed (umount): nothing left to write through
            }
            o.prefetch(off, len, fetchPool, prefetchPool).whenComplete((v, e) -> {
              if (e == null) {
                job.doneBytes.addAndGet(len);
              } else {
                job.failedBytes.addAndGet(len);
                job.error = String.valueOf(e.getCause() != null ? e.getCause().getMessage() : e.getMessage());
              }
              o.release();
              permits.release();
            });
            c = runEnd + 1;
          }
        }
      }
      permits.acquire(concurrency); // every started fetch has finished
      LOG.info("prefetch " + job.id + ": " + job.state() + ", " + job.doneBytes.get() + " bytes fetched"
          + (job.failedBytes.get() > 0 ? ", " + job.failedBytes.get() + " failed: " + job.error : ""));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      job.cancelled = true;
    } catch (RuntimeException e) {
      job.error = e.toString();
    } finally {
      job.done.complete(null);
    }
  }

  /** A full prefetch of a blob without a digest table, with something left to fetch: check the whole blob. */
  private boolean needsWholeBlobCheck(CacheObject o) {
    try {
      o.ready(fetchPool).get(); // the table (if the image has one) decides the chunking and whether it verifies
    } catch (Exception e) {
      return false; // the chunk path reports the error
    }
    return !o.fetcher().verifying() && !o.fetcher().map().allReady();
  }

  /**
   * Images without chunk digest tables can only be verified whole: stream the blob to a scratch file while
   * hashing it, and only when its sha256 is the blob's digest write the missing chunks from that copy. (The
   * cache file itself cannot be read back: the kernel's anon fd is write-only.) A mismatch writes nothing and
   * fails the job with an error naming the digest.
   */
  private void prefetchVerifiedWhole(Job job, CacheObject o) throws InterruptedException {
    dev.lazypull.image.Descriptor blob = o.binding.blob();
    if (!o.acquire()) {
      return;
    }
    java.nio.file.Path scratch = null;
    try {
      java.nio.file.Files.createDirectories(scratchDir);
      scratch = java.nio.file.Files.createTempFile(scratchDir, "blob-" + blob.digest().shortHex() + "-", ".tmp");
      java.security.MessageDigest sha = dev.lazypull.image.Digest.sha256();
      java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(1 << 20);
      try (java.nio.channels.FileChannel out = java.nio.channels.FileChannel.open(scratch,
              java.nio.file.StandardOpenOption.WRITE, java.nio.file.StandardOpenOption.READ);
          java.nio.channels.ReadableByteChannel in = o.fetcher().source().openRange(blob, 0, blob.size())) {
        long total = 0;
        while (!job.cancelled) {
          yieldToReads();
          buf.clear();
          int n = in.read(buf);
          if (n < 0) {
            break;
          }
          limiter.acquire(n);
          buf.flip();
          sha.update(buf.duplicate());
          while (buf.hasRemaining()) {
            out.write(buf);
          }
          total += n;
        }
        if (job.cancelled) {
          return;
        }
        dev.lazypull.image.Digest actual = new dev.lazypull.image.Digest(java.util.HexFormat.of().formatHex(sha.digest()));
        if (total != blob.size() || !actual.equals(blob.digest())) {
          o.fetcher().stats().integrityMismatchesOrigin.increment();
          throw new java.io.IOException("blob " + blob.digest() + " from " + o.fetcher().source().describe() + " hashes to "
              + actual + " (" + total + " bytes): nothing written");
        }
        o.fetcher().stats().bytesFetched.add(total);
        job.doneBytes.addAndGet(o.fetcher().fillFrom(out));
        LOG.fine(() -> "prefetch " + job.id + ": blob " + blob.digest().shortHex() + " verified whole");
      }
    } catch (java.io.IOException | RuntimeException e) {
      job.failedBytes.addAndGet(blob.size());
      job.error = e.getMessage();
      LOG.warning("prefetch " + job.id + ": " + e.getMessage());
    } finally {
      o.release();
      if (scratch != null) {
        try {
          java.nio.file.Files.deleteIfExists(scratch);
        } catch (java.io.IOException e) {
          LOG.fine("scratch " + scratch + ": " + e.getMessage());
        }
      }
    }
  }

  /** On-demand READs first: wait (bounded) while any are in flight. */
  private void yieldToReads() throws InterruptedException {
    long start = System.nanoTime();
    while (inflightReads.getAsLong() > 0 && System.nanoTime() - start < YIELD_LIMIT_NANOS) {
      Thread.sleep(2);
    }
  }

  @Override
  public void close() {
    for (Job j : jobs.values()) {
      j.cancelled = true;
    }
    drivers.shutdownNow();
    prefetchPool.shutdownNow();
    try {
      prefetchPool.awaitTermination(2, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

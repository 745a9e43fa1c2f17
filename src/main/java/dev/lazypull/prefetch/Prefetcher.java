package dev.lazypull.prefetch;

import dev.lazypull.fetch.ChunkFetcher;
import dev.lazypull.fetch.ChunkMap;
import dev.lazypull.frontend.ServedBlob;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.sys.DaemonThreads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Phaser;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import java.util.logging.Logger;

/**
 * Background prefetch through the blobs a front end serves: it makes ranges present exactly as a
 * kernel request would (same fetch core, same cache files), so afterwards the kernel finds the data
 * and asks nothing at all.
 *
 * <p>Always behind on-demand READs: prefetch fetches run on their own small pool (never queued
 * ahead of READs in the shared one), wait while READs are in flight, and are capped in concurrency
 * and bandwidth. A job stops when everything it covers is present, when cancelled, or when its
 * objects close.
 */
public final class Prefetcher implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Prefetcher.class.getName());

  /** How long prefetch waits for in-flight READs to drain before going ahead anyway. */
  private static final long YIELD_LIMIT_NANOS = 200_000_000L;

  /**
   * One served blob to prefetch: the whole blob when {@code ranges} is null, else these [offset,
   * length] pairs.
   */
  public record Target(ServedBlob blob, List<long[]> ranges) {}

  /** A running or finished prefetch of one image. */
  public static final class Job {
    public final String id;
    public final String fsid;
    public final AtomicLong plannedBytes = new AtomicLong();
    public final AtomicLong doneBytes = new AtomicLong();
    public final AtomicLong failedBytes = new AtomicLong();
    public final CompletableFuture<Void> done = new CompletableFuture<>();
    volatile boolean cancelled;
    public volatile String error;

    Job(String id, String fsid) {
      this.id = id;
      this.fsid = fsid;
    }

    public String state() {
      if (!done.isDone()) {
        return "running";
      }
      if (cancelled) {
        return "cancelled";
      }
      return failedBytes.get() > 0 || error != null ? "failed" : "done";
    }
  }

  private final ThreadPoolExecutor prefetchPool;
  private final ExecutorService drivers;
  private final AdaptiveLimit inFlight;
  private final BandwidthLimiter limiter;
  private final LongSupplier inflightReads;
  private final int runBytes;
  private final Map<String, Job> jobs = new ConcurrentHashMap<>();

  /** Where whole blobs without digest tables are staged and checked during a full prefetch. */
  private final Path scratchDir;

  private volatile Runnable afterJob = () -> {};

  /**
   * @param maxConcurrency most prefetch fetches in flight (all jobs together); how many run is
   *     adapted between 1 and this to what the link and the CPU give ({@link AdaptiveLimit})
   * @param runBytes the largest range one prefetch fetch covers (the fetch core's merge limit)
   * @param inflightReads kernel requests in flight: prefetch waits (a little) while there are any
   */
  public Prefetcher(
      int maxConcurrency,
      long bytesPerSecond,
      int runBytes,
      LongSupplier inflightReads,
      Path scratchDir) {
    this.scratchDir = scratchDir;
    int max = Math.max(1, maxConcurrency);
    this.inFlight = AdaptiveLimit.upTo(max);
    this.limiter = new BandwidthLimiter(bytesPerSecond);
    this.inflightReads = inflightReads;
    this.runBytes = runBytes;
    ThreadFactory numbered = DaemonThreads.numbered("lazypull-prefetch-");
    this.prefetchPool =
        (ThreadPoolExecutor)
            Executors.newFixedThreadPool(
                max,
                r -> {
                  Thread t = numbered.newThread(r);
                  t.setPriority(Thread.MIN_PRIORITY);
                  return t;
                });
    this.drivers = Executors.newCachedThreadPool(DaemonThreads.named("lazypull-prefetch-driver"));
  }

  /**
   * Runs {@code hook} when a job ends, before anyone waiting on it hears so (the fanotify front end
   * unmarks the files it completed: reads after {@code prefetch --wait} raise no event).
   */
  public void afterEachJob(Runnable hook) {
    this.afterJob = hook;
  }

  /** Prefetch fetches allowed in flight now (adapted). */
  public int concurrency() {
    return inFlight.limit();
  }

  /** Prefetch fetches in flight now. */
  public int inFlightNow() {
    return inFlight.inFlight();
  }

  /**
   * Starts a job (replacing a finished one with the same id; a running one is returned as is). Its
   * planned bytes are counted once the targets' fetchers are ready, on the job's driver thread.
   */
  public Job start(String id, String fsid, List<Target> targets) {
    Job existing = jobs.get(id);
    if (existing != null && !existing.done.isDone()) {
      return existing;
    }
    Job job = new Job(id, fsid);
    jobs.put(id, job);
    drivers.execute(() -> run(job, targets));
    return job;
  }

  public List<Job> jobsOf(String fsid) {
    List<Job> out = new ArrayList<>();
    for (Job j : jobs.values()) {
      if (j.fsid.equals(fsid)) {
        out.add(j);
      }
    }
    return out;
  }

  public int cancel(String fsid) {
    int n = 0;
    for (Job j : jobsOf(fsid)) {
      if (!j.done.isDone()) {
        j.cancelled = true;
        n++;
      }
    }
    return n;
  }

  private static long missingBytes(ChunkMap map, List<long[]> ranges) {
    long n = 0;
    for (long[] r : ranges) {
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

  private static List<long[]> ranges(Target t, ChunkMap map) {
    return t.ranges() != null ? t.ranges() : List.of(new long[] {0, map.paddedSize()});
  }

  private void run(Job job, List<Target> targets) {
    Phaser started = new Phaser(1); // the driver, plus one party per fetch in flight
    try {
      List<ChunkFetcher> fetchers = new ArrayList<>();
      for (Target t :
          targets) { // the table (if the image has one) decides the chunking and whether it
        // verifies
        ChunkFetcher f = fetcherOf(t.blob(), job);
        fetchers.add(f);
        if (f != null) {
          job.plannedBytes.addAndGet(missingBytes(f.map(), ranges(t, f.map())));
        }
      }
      for (int i = 0; i < targets.size(); i++) {
        Target t = targets.get(i);
        ServedBlob o = t.blob();
        ChunkFetcher fetcher = fetchers.get(i);
        if (fetcher == null) {
          continue;
        }
        ChunkMap map = fetcher.map();
        if (t.ranges() == null
            && scratchDir != null
            && !job.cancelled
            && !fetcher.verifying()
            && !map.allReady()) {
          prefetchVerifiedWhole(job, o, fetcher);
          continue;
        }
        for (long[] r : ranges(t, map)) {
          long end = Math.min(r[0] + r[1], map.paddedSize());
          int c = r[0] >= end ? Integer.MAX_VALUE : map.chunkOf(r[0]);
          int last = r[0] >= end ? -1 : map.chunkOf(end - 1);
          while (c <= last && !job.cancelled) {
            c = map.nextMissing(c);
            if (c < 0 || c > last) {
              break;
            }
            int runEnd = c;
            while (runEnd < last
                && !map.isReady(runEnd + 1)
                && map.chunkStart(runEnd + 2) - map.chunkStart(c) <= runBytes) {
              runEnd++;
            }
            long off = map.chunkStart(c);
            long len = map.chunkDataEnd(runEnd) - off;
            yieldToReads();
            limiter.acquire(len);
            inFlight.acquire();
            if (o.isClosed()) {
              inFlight.releaseUncounted();
              break; // no longer served (umount): nothing left to write through
            }
            started.register();
            CompletableFuture<Void> fetch = fetcher.ensure(off, len, prefetchPool);
            inFlight.releaseWhenDone(fetch, len);
            fetch.whenComplete(
                (v, e) -> {
                  if (e == null) {
                    job.doneBytes.addAndGet(len);
                  } else {
                    job.failedBytes.addAndGet(len);
                    job.error =
                        String.valueOf(
                            e.getCause() != null ? e.getCause().getMessage() : e.getMessage());
                  }
                  started.arriveAndDeregister();
                });
            c = runEnd + 1;
          }
        }
      }
      started.awaitAdvanceInterruptibly(started.arrive()); // every started fetch has finished
      LOG.info(
          "prefetch "
              + job.id
              + ": "
              + job.state()
              + ", "
              + job.doneBytes.get()
              + " bytes fetched"
              + (job.failedBytes.get() > 0
                  ? ", " + job.failedBytes.get() + " failed: " + job.error
                  : ""));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      job.cancelled = true;
    } catch (RuntimeException e) {
      job.error = e.toString();
    } finally {
      try {
        afterJob.run();
      } catch (RuntimeException e) {
        LOG.warning("after prefetch job " + job.id + ": " + e);
      }
      job.done.complete(null);
    }
  }

  /** The blob's fetcher once ready, or null after recording why it cannot be had. */
  private static ChunkFetcher fetcherOf(ServedBlob blob, Job job) throws InterruptedException {
    try {
      return blob.fetcher().get();
    } catch (ExecutionException e) {
      Throwable c = e.getCause() != null ? e.getCause() : e;
      job.failedBytes.addAndGet(blob.binding().blob().size());
      job.error = String.valueOf(c.getMessage());
      return null;
    }
  }

  /**
   * Images without chunk digest tables can only be verified whole: stream the blob to a scratch
   * file while hashing it, and only when its sha256 is the blob's digest write the missing chunks
   * from that copy. (The cache file itself cannot be read back: the kernel's anon fd is
   * write-only.) A mismatch writes nothing and fails the job with an error naming the digest.
   */
  private void prefetchVerifiedWhole(Job job, ServedBlob o, ChunkFetcher fetcher)
      throws InterruptedException {
    Descriptor blob = o.binding().blob();
    if (o.isClosed()) {
      return;
    }
    Path scratch = null;
    try {
      Files.createDirectories(scratchDir);
      scratch = Files.createTempFile(scratchDir, "blob-" + blob.digest().shortHex() + "-", ".tmp");
      MessageDigest sha = Digest.sha256();
      ByteBuffer buf = ByteBuffer.allocate(1 << 20);
      try (FileChannel out =
              FileChannel.open(scratch, StandardOpenOption.WRITE, StandardOpenOption.READ);
          ReadableByteChannel in = fetcher.source().openRange(blob, 0, blob.size())) {
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
        Digest actual = new Digest(HexFormat.of().formatHex(sha.digest()));
        if (total != blob.size() || !actual.equals(blob.digest())) {
          fetcher.stats().integrityMismatchesOrigin.increment();
          throw new IOException(
              "blob "
                  + blob.digest()
                  + " from "
                  + fetcher.source().describe()
                  + " hashes to "
                  + actual
                  + " ("
                  + total
                  + " bytes): nothing written");
        }
        fetcher.stats().bytesFetched.add(total);
        job.doneBytes.addAndGet(fetcher.fillFrom(out));
        LOG.fine(
            () -> "prefetch " + job.id + ": blob " + blob.digest().shortHex() + " verified whole");
      }
    } catch (IOException | RuntimeException e) {
      job.failedBytes.addAndGet(blob.size());
      job.error = e.getMessage();
      LOG.warning("prefetch " + job.id + ": " + e.getMessage());
    } finally {
      if (scratch != null) {
        try {
          Files.deleteIfExists(scratch);
        } catch (IOException e) {
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

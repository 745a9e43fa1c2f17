package dev.lazypull.daemon;

import dev.lazypull.cachefiles.CachefilesDecoder;
import dev.lazypull.cachefiles.CachefilesMsg;
import dev.lazypull.cachefiles.Devnode;
import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The cachefiles on-demand daemon: one poll thread takes requests from the devnode and dispatches them —
 * READs to the fetch pool through {@link RequestHandler#onRead}, OPEN and CLOSE to a single object thread.
 * The poll thread never does blocking I/O; it waits only for the kernel (poll) or for a free slot when
 * {@code maxOutstandingReads} READs are already in progress, leaving further requests queued in the kernel.
 */
public final class OndemandDaemon implements Closeable {
  private static final Logger LOG = Logger.getLogger(OndemandDaemon.class.getName());
  private static final int POLL_TIMEOUT_MS = 250;

  private final Devnode devnode;
  private final DaemonStats stats;
  private final Semaphore readSlots;
  private final FetchPools fetchPools;
  private final ExecutorService fetchPool;
  private final ExecutorService objectThread;
  private final RequestHandler handler;
  private final Thread pollThread;
  private volatile boolean running;
  private volatile Throwable failure;
  private final int mergeLimit;
  private final int chunkSize;
  private volatile PrefetchManager prefetch;

  public OndemandDaemon(Devnode devnode, Catalog catalog, ImageSources sources, DaemonConfig config,
      DaemonStats stats) {
    this.devnode = devnode;
    this.stats = stats;
    this.readSlots = new Semaphore(config.maxOutstandingReads());
    this.fetchPools = new FetchPools(config.fetchThreads());
    this.fetchPool = fetchPools.forOrigin(FetchPools.CACHE_PROBES); // probes; fetches use their origin's pool
    this.objectThread = Executors.newSingleThreadExecutor(threads("lazypull-objects"));
    this.handler = new RequestHandler(devnode, catalog, sources, config, stats, fetchPools, readSlots::release);
    this.pollThread = new Thread(this::pollLoop, "lazypull-devnode-poll");
    this.mergeLimit = config.mergeLimit();
    this.chunkSize = config.chunkSize();
  }

  private static ThreadFactory threads(String name) {
    return dev.lazypull.sys.DaemonThreads.numbered(name + "-");
  }

  public void start() {
    running = true;
    pollThread.start();
  }

  public DaemonStats stats() {
    return stats;
  }

  /** Number of kernel objects currently open. */
  public int openObjects() {
    return handler.objects().size();
  }

  /** Snapshot of open objects for status: (object id, fsid, device id, blob digest, ready bytes, size). */
  public List<ObjectStatus> objectStatus() {
    return handler.objects().stream()
        .map(o -> new ObjectStatus(o.objectId, o.binding.image().fsid(), o.binding.deviceId(),
            o.binding.blob().digest().toString(), o.fetcher().map().readyBytes(), o.binding.blob().size()))
        .toList();
  }

  /** READs received and not yet answered, and how many of those are older than {@code hungAfter}. */
  public long[] inflightReads(java.time.Duration hungAfter) {
    long now = System.nanoTime();
    long total = 0;
    long hung = 0;
    for (long t0 : handler.inflightReadStarts()) {
      total++;
      if (now - t0 > hungAfter.toNanos()) {
        hung++;
      }
    }
    return new long[] {total, hung};
  }

  /**
   * Turns on background prefetch (policies, access profiles, explicit prefetch through the control API).
   * Call before {@link #start}.
   */
  public void enablePrefetch(PrefetchConfig config, Path stateDir) {
    Prefetcher prefetcher = new Prefetcher(fetchPool, config.threads(), config.bytesPerSecond(), mergeLimit,
        () -> handler.inflightReadCount(), stateDir.resolve("tmp"));
    prefetch = new PrefetchManager(prefetcher, config, stateDir, chunkSize, this::objectsOf);
    handler.addListener(prefetch);
  }

  /**
   * Where to look for access profiles of newly registered images that have none locally (their registry).
   * No-op when prefetch is off.
   */
  public void setProfileFetcher(ProfileFetcher fetcher) {
    if (prefetch != null) {
      prefetch.setProfileFetcher(fetcher);
    }
  }

  /** Called after an image is registered (control API, images.d): fetches its profile if it has none. */
  public void imageRegistered(dev.lazypull.catalog.ImageRecord image) {
    if (prefetch != null) {
      prefetch.imageRegistered(image);
    }
  }

  /** Sets an image's prefetch policy (none, all, profile); no-op when prefetch is off. */
  public void setPrefetchPolicy(String fsid, String policy) {
    if (prefetch != null) {
      prefetch.setPolicy(fsid, PrefetchPolicy.parse(policy));
    }
  }

  /** The prefetch manager, or null when prefetch is off. */
  PrefetchManager prefetch() {
    return prefetch;
  }

  /** Open objects of one image (all its blobs that are mounted now). */
  List<CacheObject> objectsOf(String fsid) {
    return handler.objects().stream().filter(o -> o.binding.image().fsid().equals(fsid)).toList();
  }

  /** The cache files the kernel holds open right now, for the cache janitor. */
  public List<CacheJanitor.OpenCookie> openCookies() {
    return handler.objects().stream()
        .map(o -> new CacheJanitor.OpenCookie(o.volumeKey, o.cookieKey, o.fetcher().map().readyBytes()))
        .toList();
  }

  /** Keeps {@code janitor}'s LRU order current: every OPEN and CLOSE counts as a use. */
  public void attach(CacheJanitor janitor) {
    handler.addListener(new RequestHandler.ObjectListener() {
      @Override
      public void opened(CacheObject object) {
        janitor.touch(object.volumeKey, object.cookieKey);
      }

      @Override
      public void closed(CacheObject object) {
        janitor.touch(object.volumeKey, object.cookieKey);
      }
    });
  }

  public record ObjectStatus(int objectId, String fsid, int deviceId, String blob, long readyBytes, long size) {}

  /** The error that stopped the poll loop, if it stopped on its own. */
  public Throwable failure() {
    return failure;
  }

  public boolean isRunning() {
    return running && pollThread.isAlive();
  }

  private void pollLoop() {
    ByteBuffer buf = ByteBuffer.allocateDirect(CachefilesDecoder.MSG_MAX_SIZE);
    int consecutiveErrors = 0;
    while (running) {
      try {
        if (!devnode.awaitRequest(POLL_TIMEOUT_MS)) {
          continue;
        }
        while (running) {
          readSlots.acquire();
          int n;
          try {
            n = devnode.read(buf);
          } catch (IOException | RuntimeException e) {
            readSlots.release();
            throw e;
          }
          if (n == 0) {
            readSlots.release();
            break;
          }
          dispatch(CachefilesDecoder.decode(buf, n));
        }
        consecutiveErrors = 0;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      } catch (ErrnoException e) {
        if (e.errno() == Errno.EIO) { // the cache is dead (devnode unbound or withdrawn): nothing more will come
          fail(e);
          return;
        }
        if (++consecutiveErrors > 100) {
          fail(e);
          return;
        }
        LOG.warning("devnode: " + e.getMessage());
        sleepQuietly(10);
      } catch (IOException | RuntimeException e) {
        if (++consecutiveErrors > 100) {
          fail(e);
          return;
        }
        LOG.log(Level.WARNING, "devnode poll loop: " + e, e);
        sleepQuietly(10);
      }
    }
  }

  private void dispatch(CachefilesMsg msg) {
    if (msg instanceof CachefilesMsg.Read read) {
      handler.onRead(read); // releases its slot when answered
      return;
    }
    if (msg instanceof CachefilesMsg.Malformed bad && bad.opcode() == CachefilesMsg.OPCODE_READ) {
      objectThread.execute(() -> handler.onMalformed(bad)); // answered there, slot released there
      return;
    }
    readSlots.release();
    if (msg instanceof CachefilesMsg.Open open) {
      objectThread.execute(() -> handler.onOpen(open));
    } else if (msg instanceof CachefilesMsg.Close close) {
      objectThread.execute(() -> handler.onClose(close));
    } else if (msg instanceof CachefilesMsg.Malformed bad) {
      objectThread.execute(() -> handler.onMalformed(bad));
    }
  }

  private void fail(Throwable e) {
    failure = e;
    running = false;
    LOG.severe("devnode failed, daemon stopping: " + e.getMessage());
  }

  private static void sleepQuietly(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** Waits until the poll loop ends (stop() or a fatal devnode error). */
  public void awaitTermination() throws InterruptedException {
    pollThread.join();
  }

  /**
   * Stops taking requests, fails what is queued, closes every object and the devnode. The kernel then fails
   * outstanding requests with EIO; mounts must be remounted against a new daemon.
   */
  @Override
  public void close() {
    running = false;
    try {
      pollThread.join(2000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (prefetch != null) {
      prefetch.close();
    }
    objectThread.shutdown();
    try {
      objectThread.awaitTermination(2, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    fetchPools.close();
    handler.closeAll();
    try {
      devnode.close();
    } catch (IOException e) {
      LOG.warning("closing devnode: " + e.getMessage());
    }
  }
}

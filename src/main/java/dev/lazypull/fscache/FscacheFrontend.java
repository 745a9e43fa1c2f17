package dev.lazypull.fscache;

import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.frontend.BlobListener;
import dev.lazypull.frontend.Frontend;
import dev.lazypull.frontend.RequestStats;
import dev.lazypull.frontend.ServedBlob;
import dev.lazypull.sys.DaemonThreads;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The fscache front end (cachefiles on-demand mode): one poll thread takes requests from the
 * devnode and dispatches them — READs through {@link RequestHandler#onRead}, which queues fetches
 * on the fetch core, OPEN and CLOSE to a single object thread. The poll thread never does blocking
 * I/O; it waits only for the kernel (poll) or for a free slot when {@code maxOutstandingReads}
 * READs are already in progress, leaving further requests queued in the kernel.
 */
public final class FscacheFrontend implements Frontend {
  private static final Logger LOG = Logger.getLogger(FscacheFrontend.class.getName());
  private static final int POLL_TIMEOUT_MS = 250;

  private final Devnode devnode;
  private final RequestStats stats = new RequestStats();
  private final Semaphore readSlots;
  private final ExecutorService objectThread;
  private final RequestHandler handler;
  private final Thread pollThread;
  private volatile boolean running;
  private volatile Throwable failure;

  /**
   * @param devnode the bound cachefiles devnode ({@link CacheBinder}); closed with this front end
   * @param maxOutstandingReads READs in progress before the poll thread stops taking more from the
   *     kernel
   */
  public FscacheFrontend(
      Devnode devnode,
      Catalog catalog,
      ImageSources sources,
      FetchCore core,
      int maxOutstandingReads) {
    this.devnode = devnode;
    this.readSlots = new Semaphore(maxOutstandingReads);
    this.objectThread =
        Executors.newSingleThreadExecutor(DaemonThreads.numbered("lazypull-objects-"));
    this.handler = new RequestHandler(devnode, catalog, sources, core, stats, readSlots::release);
    this.pollThread = new Thread(this::pollLoop, "lazypull-devnode-poll");
  }

  @Override
  public String name() {
    return "fscache";
  }

  @Override
  public void start() {
    running = true;
    pollThread.start();
  }

  @Override
  public RequestStats stats() {
    return stats;
  }

  @Override
  public void addListener(BlobListener listener) {
    handler.addListener(listener);
  }

  @Override
  public List<ServedBlob> served() {
    return List.copyOf(handler.objects());
  }

  /** Number of kernel objects currently open. */
  public int openObjects() {
    return handler.objects().size();
  }

  @Override
  public long[] inflightRequests(Duration hungAfter) {
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

  /** The cache files the kernel holds open right now, for the cache janitor. */
  public List<CacheJanitor.OpenCookie> openCookies() {
    return handler.objects().stream()
        .map(o -> new CacheJanitor.OpenCookie(o.volumeKey, o.cookieKey, o.readyBytes()))
        .toList();
  }

  /** Keeps {@code janitor}'s LRU order current: every OPEN and CLOSE counts as a use. */
  public void attach(CacheJanitor janitor) {
    handler.addListener(
        new BlobListener() {
          @Override
          public void opened(ServedBlob blob) {
            CacheObject o = (CacheObject) blob;
            janitor.touch(o.volumeKey, o.cookieKey);
          }

          @Override
          public void closed(ServedBlob blob) {
            CacheObject o = (CacheObject) blob;
            janitor.touch(o.volumeKey, o.cookieKey);
          }
        });
  }

  /** The error that stopped the poll loop, if it stopped on its own. */
  @Override
  public Throwable failure() {
    return failure;
  }

  @Override
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
        if (e.errno()
            == Errno
                .EIO) { // the cache is dead (devnode unbound or withdrawn): nothing more will come
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

  /** Waits until the poll loop ends (close() or a fatal devnode error). */
  @Override
  public void awaitTermination() throws InterruptedException {
    pollThread.join();
  }

  /**
   * Stops taking requests, fails what is queued, closes every object and the devnode. The kernel
   * then fails outstanding requests with EIO; mounts must be remounted against a new daemon.
   */
  @Override
  public void close() {
    running = false;
    try {
      pollThread.join(2000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    objectThread.shutdown();
    try {
      objectThread.awaitTermination(2, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    handler.closeAll();
    try {
      devnode.close();
    } catch (IOException e) {
      LOG.warning("closing devnode: " + e.getMessage());
    }
  }
}

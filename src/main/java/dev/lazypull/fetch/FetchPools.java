package dev.lazypull.fetch;

import dev.lazypull.image.ImageReference;
import dev.lazypull.sys.DaemonThreads;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * The fetch threads, one pool per origin of blobs: a registry (by the host users write in
 * references) or local OCI layouts. A fetch thread blocks on its source — against a stalled
 * registry until the client's read timeout, for each retry — so with one shared pool a single bad
 * registry takes every thread and the READs of images from any other registry, or from local
 * layouts, miss their deadline queued behind it. Per origin, they never wait for another origin's
 * fetches.
 *
 * <p>Each pool has up to {@code threads} threads; idle threads exit after a minute, so origins not
 * in use cost nothing. Pools are created on first use and live until {@link #close}.
 */
public final class FetchPools implements AutoCloseable {
  public static final String LOCAL = "local";

  /**
   * Getting objects ready (loading tables is the origin's work; this is probing the cache file's
   * extents): apart from {@link #LOCAL}, so a slow local layout cannot hold up the READs of
   * registry images. Not a name any reference can have.
   */
  static final String CACHE_PROBES = "(cache)";

  private final int threads;
  private final Map<String, ThreadPoolExecutor> pools = new ConcurrentHashMap<>();
  private volatile boolean closed;

  FetchPools(int threads) {
    this.threads = threads;
  }

  /** The pool for the origin of {@code reference}'s blobs. */
  ExecutorService forReference(String reference) {
    return forOrigin(origin(reference));
  }

  ExecutorService forOrigin(String origin) {
    ThreadPoolExecutor pool = pools.computeIfAbsent(origin, this::create);
    if (closed) { // raced with close(): refuse work rather than leave a pool running
      pool.shutdown();
    }
    return pool;
  }

  /** A registry's name as users write it (case-insensitive), or {@link #LOCAL} for OCI layouts. */
  public static String origin(String reference) {
    try {
      return ImageReference.parse(reference) instanceof ImageReference.Registry r
          ? r.registry().toLowerCase(Locale.ROOT)
          : LOCAL;
    } catch (IllegalArgumentException e) {
      return LOCAL; // the source cannot be opened either; the READs fail there
    }
  }

  private ThreadPoolExecutor create(String origin) {
    String name = "lazypull-fetch-" + origin.replaceAll("[^A-Za-z0-9.:-]", "_") + "-";
    ThreadPoolExecutor pool =
        new ThreadPoolExecutor(
            threads,
            threads,
            60,
            TimeUnit.SECONDS,
            new LinkedBlockingQueue<>(),
            DaemonThreads.numbered(name));
    pool.allowCoreThreadTimeOut(true);
    return pool;
  }

  /**
   * Stops every pool: queued fetches are not run (their READs are failed by the caller's shutdown).
   */
  @Override
  public void close() {
    closed = true;
    for (ThreadPoolExecutor p : pools.values()) {
      p.shutdown();
    }
    long deadline =
        System.nanoTime()
            + TimeUnit.SECONDS.toNanos(2); // one wait for all, not 2 s per stalled origin
    for (ThreadPoolExecutor p : pools.values()) {
      try {
        p.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      p.shutdownNow();
    }
  }
}

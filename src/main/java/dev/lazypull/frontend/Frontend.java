package dev.lazypull.frontend;

import java.time.Duration;
import java.util.List;

/**
 * A kernel front end of the daemon — fscache (cachefiles on-demand) or fanotify (pre-content events
 * on cache files) — over the one fetch core. The application layer starts it, watches it and stops
 * it; everything else sees the blobs it serves.
 */
public interface Frontend extends AutoCloseable {
  /** "fscache" or "fanotify", for status and metrics. */
  String name();

  /** Starts taking kernel requests. */
  void start();

  /**
   * Whether it still serves (false once stopped, or after a fatal kernel error: see {@link
   * #failure}).
   */
  boolean isRunning();

  /** The error that stopped it on its own, or null. */
  Throwable failure();

  /** Waits until it stops serving. */
  void awaitTermination() throws InterruptedException;

  /** Its request counters. */
  RequestStats stats();

  /** Blobs it serves right now. */
  List<ServedBlob> served();

  /**
   * Kernel requests received and not yet answered, and how many of those are older than {@code
   * hungAfter}.
   */
  long[] inflightRequests(Duration hungAfter);

  /** Adds a listener; call before {@link #start}. */
  void addListener(BlobListener listener);

  /** Stops: answers what is in flight (without data) and releases the kernel side. */
  @Override
  void close();
}

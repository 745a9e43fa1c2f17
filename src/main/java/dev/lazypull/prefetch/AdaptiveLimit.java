package dev.lazypull.prefetch;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongSupplier;
import java.util.logging.Logger;

/**
 * How many prefetch fetches may be in flight, adapted to what the link and the CPU give: a hill
 * climb on delivered throughput. Each measuring window (at least {@link #WINDOW_NANOS} and as many
 * completions as the limit) ends with a decision:
 *
 * <ul>
 *   <li>throughput rose since the last window by more than {@link #TOLERANCE}, or by more than half
 *       of what the last step could add (one request more of n adds at most 1/n): keep moving the
 *       limit the same way (more requests fill a link with latency to hide);
 *   <li>it fell by more than that: turn around;
 *   <li>it stayed flat: go down — an extra request that buys nothing only costs CPU and memory (the
 *       CPU, or the registry, is the limit), and fewer requests that lose nothing are better.
 * </ul>
 *
 * The limit stays in [{@code min}, {@code max}] and starts at {@code start}. The climber never
 * stops, so it follows a link whose speed changes; near the optimum it moves by one in either
 * direction. Thread-safe; callers {@link #acquire} before starting a fetch and {@link #release}
 * with its bytes when it ends (failed fetches release 0 bytes).
 */
final class AdaptiveLimit {
  private static final Logger LOG = Logger.getLogger(AdaptiveLimit.class.getName());

  /** Shortest measuring window. */
  static final long WINDOW_NANOS = TimeUnit.MILLISECONDS.toNanos(250);

  /**
   * Where the climb starts: four 4 MiB reads in flight fill a loopback or LAN link from a 2-CPU
   * host (measured: docs/benchmarks.md), and a short prefetch has few windows to climb in.
   */
  static final int START = 4;

  /** Relative throughput change below which two windows count as the same. */
  static final double TOLERANCE = 0.1;

  private final int min;
  private final int max;
  private final LongSupplier nanoClock;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition roomFreed = lock.newCondition();

  private int limit;
  private int inFlight;
  private int direction = 1;
  private long windowStart;
  private long windowBytes;
  private int windowCompletions;
  private double lastRate = -1;
  private int lastLimit;

  AdaptiveLimit(int min, int start, int max, LongSupplier nanoClock) {
    if (min < 1 || max < min || start < min || start > max) {
      throw new IllegalArgumentException(
          "adaptive limit needs 1 <= min <= start <= max: " + min + ", " + start + ", " + max);
    }
    this.min = min;
    this.max = max;
    this.limit = start;
    this.nanoClock = nanoClock;
    this.windowStart = nanoClock.getAsLong();
  }

  /** Between 1 and {@code max}, starting at {@link #START} (or {@code max} if smaller). */
  static AdaptiveLimit upTo(int max) {
    return new AdaptiveLimit(1, Math.min(START, max), max, System::nanoTime);
  }

  /** Waits until one more fetch may start, and counts it in flight. */
  void acquire() throws InterruptedException {
    lock.lock();
    try {
      while (inFlight >= limit) {
        roomFreed.await();
      }
      if (inFlight == 0 && windowCompletions == 0) {
        windowStart = nanoClock.getAsLong(); // idle time before this is not the link's
      }
      inFlight++;
    } finally {
      lock.unlock();
    }
  }

  /** A fetch started by {@link #acquire} ended, having delivered {@code bytes}. */
  void release(long bytes) {
    lock.lock();
    try {
      inFlight--;
      windowBytes += bytes;
      windowCompletions++;
      long now = nanoClock.getAsLong();
      long elapsed = now - windowStart;
      if (elapsed >= WINDOW_NANOS && windowCompletions >= limit) {
        decide(windowBytes * 1e9 / elapsed);
        windowStart = now;
        windowBytes = 0;
        windowCompletions = 0;
      }
      roomFreed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /**
   * A fetch started by {@link #acquire} turned out to need no transfer (its chunks were cached): it
   * frees its place without counting as a completion, so it cannot pass for a fast link.
   */
  void releaseUncounted() {
    lock.lock();
    try {
      inFlight--;
      roomFreed.signalAll();
    } finally {
      lock.unlock();
    }
  }

  /**
   * Releases the place {@code fetch} took once it ends, with its {@code bytes} if it succeeded. A
   * fetch already done when handed over (its chunks were cached, or fetched meanwhile by a reader)
   * moved nothing over the link: its place is freed uncounted at once.
   */
  void releaseWhenDone(CompletableFuture<?> fetch, long bytes) {
    if (fetch.isDone()) {
      releaseUncounted();
    } else {
      fetch.whenComplete((v, e) -> release(e == null ? bytes : 0));
    }
  }

  private void decide(double rate) {
    if (lastRate >= 0) {
      // one request more of many can add at most 1/n: count half of that as a real change
      double tolerance =
          Math.min(TOLERANCE, 0.5 * Math.abs(limit - lastLimit) / Math.max(1, lastLimit));
      if (rate < lastRate * (1 - tolerance)) {
        direction = -direction;
      } else if (rate <= lastRate * (1 + tolerance)) {
        direction = -1;
      }
    }
    lastRate = rate;
    lastLimit = limit;
    if (limit + direction < min || limit + direction > max) {
      direction = -direction; // at a bound only the other way is left to try
    }
    limit = Math.max(min, Math.min(max, limit + direction));
    int now = limit;
    LOG.fine(
        () ->
            String.format(
                "prefetch: %.0f MiB/s, %d fetches in flight next", rate / (1 << 20), now));
  }

  /** The current limit. */
  int limit() {
    lock.lock();
    try {
      return limit;
    } finally {
      lock.unlock();
    }
  }

  int inFlight() {
    lock.lock();
    try {
      return inFlight;
    } finally {
      lock.unlock();
    }
  }
}

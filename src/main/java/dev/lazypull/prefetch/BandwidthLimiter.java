package dev.lazypull.prefetch;

/**
 * A token bucket in bytes per second; {@link #acquire} sleeps the caller until its bytes fit. 0 =
 * unlimited.
 */
final class BandwidthLimiter {
  private final long bytesPerSecond;
  private long nextFreeNanos = System.nanoTime();

  BandwidthLimiter(long bytesPerSecond) {
    this.bytesPerSecond = bytesPerSecond;
  }

  void acquire(long bytes) throws InterruptedException {
    if (bytesPerSecond <= 0) {
      return;
    }
    long wait;
    synchronized (this) {
      long now = System.nanoTime();
      long start = Math.max(now, nextFreeNanos - 250_000_000L); // allow a 250 ms burst
      nextFreeNanos = Math.max(nextFreeNanos, start) + bytes * 1_000_000_000L / bytesPerSecond;
      wait = nextFreeNanos - now - 250_000_000L;
    }
    if (wait > 0) {
      Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
    }
  }
}

package dev.lazypull.testing;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Waits for a condition instead of sleeping for a guessed time: returns as soon as the condition
 * holds, and fails with what was awaited once the timeout passes. The condition is polled every few
 * milliseconds.
 */
public final class Await {
  /**
   * Generous: a timeout only ends a test that has already failed, so it must not trip on a loaded
   * machine.
   */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(20);

  private static final long POLL_MILLIS = 5;

  /**
   * A condition that may throw (an exception fails the wait at once: the test is broken, not slow).
   */
  @FunctionalInterface
  public interface Condition {
    boolean holds() throws Exception;
  }

  private Await() {}

  /**
   * Waits up to {@link #DEFAULT_TIMEOUT} for {@code condition}; {@code what} names it in the
   * failure.
   */
  public static void until(Condition condition, String what) throws InterruptedException {
    until(condition, DEFAULT_TIMEOUT, what);
  }

  public static void until(Condition condition, Duration timeout, String what)
      throws InterruptedException {
    long start = System.nanoTime();
    long limit = timeout.toNanos();
    while (!check(condition, what)) {
      if (System.nanoTime() - start > limit) {
        throw new AssertionError(
            "timed out after " + timeout.toMillis() + " ms waiting for: " + what);
      }
      TimeUnit.MILLISECONDS.sleep(POLL_MILLIS);
    }
  }

  private static boolean check(Condition condition, String what) {
    try {
      return condition.holds();
    } catch (RuntimeException | Error e) {
      throw e;
    } catch (Exception e) {
      throw new AssertionError("checking whether " + what + " failed: " + e, e);
    }
  }

  /**
   * Waits until {@link System#currentTimeMillis()} has moved past its value at the call, and
   * returns the new value: two things stamped with the wall clock either side of this call get
   * different stamps.
   */
  public static long nextMillisecond() {
    long now = System.currentTimeMillis();
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    long t;
    while ((t = System.currentTimeMillis()) <= now) {
      if (System.nanoTime() > end) {
        throw new AssertionError("the wall clock did not advance past " + now + " in 5 s");
      }
      Thread.onSpinWait();
    }
    return t;
  }
}

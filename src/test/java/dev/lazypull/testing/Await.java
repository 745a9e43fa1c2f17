package dev.lazypull.testing;

import java.time.Duration;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * Waits for a condition with a deadline, failing with what was awaited: how tests wait on state that has no
 * future or event to join (kernel-side effects, counters, files). Not a sleep standing in for synchronization:
 * the wait ends as soon as the condition holds, and a condition that never holds fails the test.
 */
public final class Await {
  public static final Duration DEFAULT = Duration.ofSeconds(10);

  private Await() {}

  public static void until(BooleanSupplier condition, String what) {
    until(condition, DEFAULT, what);
  }

  public static void until(BooleanSupplier condition, Duration timeout, String what) {
    long end = System.nanoTime() + timeout.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError("timed out after " + timeout + " waiting for " + what);
      }
      LockSupport.parkNanos(2_000_000);
      if (Thread.interrupted()) {
        Thread.currentThread().interrupt();
        throw new AssertionError("interrupted waiting for " + what);
      }
    }
  }
}

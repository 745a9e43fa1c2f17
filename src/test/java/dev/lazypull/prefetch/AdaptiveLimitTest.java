package dev.lazypull.prefetch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.testing.Await;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntToDoubleFunction;
import org.junit.jupiter.api.Test;

class AdaptiveLimitTest {
  private final AtomicLong clock = new AtomicLong(1_000_000_000L);

  /**
   * Runs {@code windows} measuring windows against a model of the link: with {@code n} fetches in
   * flight it delivers {@code rate(n)} bytes per second. Returns the limit after each window.
   */
  private List<Integer> drive(AdaptiveLimit limit, IntToDoubleFunction rate, int windows)
      throws InterruptedException {
    List<Integer> seen = new ArrayList<>();
    for (int w = 0; w < windows; w++) {
      int n = limit.limit();
      for (int i = 0; i < n; i++) {
        limit.acquire();
      }
      long window = AdaptiveLimit.WINDOW_NANOS;
      clock.addAndGet(window);
      long bytes = (long) (rate.applyAsDouble(n) * window / 1e9);
      for (int i = 0; i < n; i++) {
        limit.release(bytes / n);
      }
      seen.add(limit.limit());
    }
    return seen;
  }

  private AdaptiveLimit limit(int min, int start, int max) {
    return new AdaptiveLimit(min, start, max, clock::get);
  }

  @Test
  void aLinkThatRewardsMoreRequestsGetsThemUpToTheMaximum() throws Exception {
    AdaptiveLimit l = limit(1, 2, 16);
    List<Integer> seen = drive(l, n -> n * 50e6, 30); // latency-bound: each request adds speed
    assertTrue(seen.contains(16), "reached the maximum: " + seen);
    assertTrue(seen.subList(20, 30).stream().allMatch(n -> n >= 15), "stays near it: " + seen);
  }

  @Test
  void whereTheCpuOrTheLinkIsTheLimitItSettlesAtTheKnee() throws Exception {
    AdaptiveLimit l = limit(1, 2, 16);
    // saturates at 4 requests; beyond that each extra request costs a little (contention)
    List<Integer> seen = drive(l, n -> n <= 4 ? n * 100e6 : 400e6 * (1 - 0.02 * (n - 4)), 60);
    assertTrue(
        seen.subList(20, 60).stream().allMatch(n -> n >= 3 && n <= 6),
        "hovers around the knee (4): " + seen);
    assertTrue(seen.stream().allMatch(n -> n <= 8), "never wanders far above it: " + seen);
  }

  @Test
  void whenMoreRequestsBuyNothingItUsesFew() throws Exception {
    AdaptiveLimit l = limit(1, 4, 16);
    List<Integer> seen = drive(l, n -> 300e6, 30); // CPU-bound: flat whatever the limit
    assertTrue(seen.subList(5, 30).stream().allMatch(n -> n <= 2), "few requests: " + seen);
  }

  @Test
  void followsALinkThatChangesSpeed() throws Exception {
    AdaptiveLimit l = limit(1, 2, 16);
    drive(l, n -> 300e6, 20); // CPU-bound first
    assertTrue(l.limit() <= 2, "low while flat: " + l.limit());
    List<Integer> seen = drive(l, n -> n * 50e6, 40); // then a link with latency
    assertEquals(16, seen.stream().mapToInt(Integer::intValue).max().orElseThrow(), "" + seen);
  }

  @Test
  void acquireWaitsForRoomAndReleaseMakesIt() throws Exception {
    AdaptiveLimit l = limit(1, 1, 4);
    l.acquire();
    Thread second =
        new Thread(
            () -> {
              try {
                l.acquire();
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            });
    second.start();
    Await.until(() -> second.getState() == Thread.State.WAITING, "second acquire waits");
    assertEquals(1, l.inFlight(), "only one fetch in flight at limit 1");
    l.release(0);
    second.join();
    assertEquals(1, l.inFlight(), "the waiter took the freed place");
  }

  @Test
  void refusesImpossibleBounds() {
    assertThrows(IllegalArgumentException.class, () -> limit(0, 1, 2));
    assertThrows(IllegalArgumentException.class, () -> limit(2, 1, 4));
    assertThrows(IllegalArgumentException.class, () -> limit(1, 5, 4));
  }

  @Test
  void idleTimeBeforeAFetchIsNotCountedAgainstTheLink() throws Exception {
    AdaptiveLimit l = limit(1, 2, 16);
    drive(l, n -> n * 50e6, 4);
    int before = l.limit();
    clock.addAndGet(60_000_000_000L); // a minute with nothing to fetch
    drive(l, n -> n * 50e6, 1);
    assertTrue(l.limit() >= before, "an idle minute did not read as a slow link: " + l.limit());
  }
}

package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.time.Instant;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class RetryPolicyTest {
  @Test
  void backoffGrowsExponentiallyWithJitterAndIsCapped() {
    RetryPolicy p =
        new RetryPolicy(5, Duration.ofMillis(100), Duration.ofMillis(1000), Duration.ofSeconds(30));
    for (int i = 0; i < 200; i++) {
      long a0 = p.backoff(0).toMillis();
      long a2 = p.backoff(2).toMillis();
      long a9 = p.backoff(9).toMillis();
      assertTrue(a0 >= 50 && a0 <= 100, "attempt 0: " + a0);
      assertTrue(a2 >= 200 && a2 <= 400, "attempt 2: " + a2);
      assertTrue(a9 >= 500 && a9 <= 1000, "capped: " + a9);
    }
    long distinct =
        IntStream.range(0, 50).mapToLong(i -> p.backoff(3).toMillis()).distinct().count();
    assertTrue(distinct > 5, "jittered");
  }

  @Test
  void retryableStatuses() {
    for (int c : new int[] {429, 500, 502, 503, 504, 408}) {
      assertTrue(RetryPolicy.retryableStatus(c), "" + c);
    }
    for (int c : new int[] {200, 206, 400, 401, 403, 404, 416, 501, 505}) {
      assertFalse(RetryPolicy.retryableStatus(c), "" + c);
    }
  }

  @Test
  void retryAfterInSecondsOrAsADate() {
    Instant now = Instant.parse("2026-11-21T10:00:00Z");
    assertEquals(Duration.ofSeconds(7), RetryPolicy.parseRetryAfter("7", now));
    assertEquals(
        Duration.ofSeconds(30), RetryPolicy.parseRetryAfter("Sat, 21 Nov 2026 10:00:30 GMT", now));
    assertEquals(Duration.ZERO, RetryPolicy.parseRetryAfter("Sat, 21 Nov 2026 09:00:00 GMT", now));
    assertNull(RetryPolicy.parseRetryAfter("soon", now));
    assertNull(RetryPolicy.parseRetryAfter("-3", now));
    assertNull(RetryPolicy.parseRetryAfter(null, now));
  }
}

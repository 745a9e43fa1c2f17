package dev.lazypull.registry;

import java.time.Duration;
import java.time.Instant;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.concurrent.ThreadLocalRandom;

/**
 * When to retry a registry request and how long to wait. Only idempotent requests (GET, HEAD) are
 * retried, on connection errors, 5xx other than 501/505, and 429. The wait is exponential with
 * jitter: attempt n waits a random time in {@code [d/2, d]} with {@code d = min(max, base · 2^n)},
 * so a burst of failing fetch threads does not retry in lockstep. A {@code Retry-After} header
 * (seconds or an HTTP-date) replaces the computed wait; one longer than {@code maxRetryAfter} is
 * not waited for — the request fails instead, because a kernel reader is blocked behind it.
 *
 * @param retries attempts after the first
 */
public record RetryPolicy(int retries, Duration base, Duration max, Duration maxRetryAfter) {
  public RetryPolicy {
    if (retries < 0 || base.isNegative() || max.compareTo(base) < 0 || maxRetryAfter.isNegative()) {
      throw new IllegalArgumentException("bad retry policy " + retries + " " + base + " " + max);
    }
  }

  public static RetryPolicy none() {
    return new RetryPolicy(0, Duration.ZERO, Duration.ZERO, Duration.ZERO);
  }

  /** True for statuses worth repeating an idempotent request for. */
  public static boolean retryableStatus(int code) {
    return code == 429 || code == 408 || (code >= 500 && code <= 599 && code != 501 && code != 505);
  }

  /** The wait before retry number {@code attempt} (0 for the first retry), with jitter. */
  public Duration backoff(int attempt) {
    long baseMs = base.toMillis();
    long cap = max.toMillis();
    long d = attempt >= 30 ? cap : Math.min(cap, baseMs << attempt);
    if (d <= 1) {
      return Duration.ofMillis(d);
    }
    return Duration.ofMillis(d / 2 + ThreadLocalRandom.current().nextLong(d / 2 + 1));
  }

  /**
   * Parses {@code Retry-After}: delta-seconds or an IMF-fixdate. Null when absent or unparseable; a
   * date in the past is zero.
   */
  public static Duration parseRetryAfter(String value, Instant now) {
    if (value == null || value.isBlank()) {
      return null;
    }
    String v = value.trim();
    try {
      long s = Long.parseLong(v);
      return s < 0 ? null : Duration.ofSeconds(s);
    } catch (NumberFormatException e) {
      // not seconds; try a date
    }
    try {
      Instant at = ZonedDateTime.parse(v, DateTimeFormatter.RFC_1123_DATE_TIME).toInstant();
      Duration d = Duration.between(now, at);
      return d.isNegative() ? Duration.ZERO : d;
    } catch (DateTimeParseException e) {
      return null;
    }
  }
}

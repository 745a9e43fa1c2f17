package dev.lazypull.registry;

import java.util.concurrent.atomic.LongAdder;

/**
 * Counters of one registry client, for metrics: requests, retries, token fetches, mirror fallbacks.
 */
public final class RegistryStats {
  /** HTTP attempts sent (each retry counts). */
  public final LongAdder requests = new LongAdder();

  /** Attempts repeated after a connection error, 5xx or 429. */
  public final LongAdder retries = new LongAdder();

  /**
   * Bearer tokens fetched from a token endpoint (first use, expiry, or after the registry refused
   * one).
   */
  public final LongAdder tokenFetches = new LongAdder();

  /** Pulls that moved on from a failing (or empty) mirror to the next endpoint. */
  public final LongAdder mirrorFallbacks = new LongAdder();
}

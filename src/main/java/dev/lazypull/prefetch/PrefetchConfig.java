package dev.lazypull.prefetch;

import java.time.Duration;

/**
 * Prefetch settings ({@code [prefetch]} in the config file).
 *
 * @param policy what to prefetch when an image's objects open, unless the image has its own policy
 * @param threads most prefetch fetches in flight at once (all images together); how many run is
 *     adapted below this to what the link and the CPU give
 * @param bytesPerSecond bandwidth cap for prefetch, 0 = none
 * @param profileWindow how long after the first mount reads are recorded into the access profile
 */
public record PrefetchConfig(
    PrefetchPolicy policy, int threads, long bytesPerSecond, Duration profileWindow) {
  public PrefetchConfig {
    if (threads < 1 || threads > 256) {
      throw new IllegalArgumentException("prefetch threads must be in [1, 256]: " + threads);
    }
    if (bytesPerSecond < 0) {
      throw new IllegalArgumentException("prefetch bandwidth must be >= 0");
    }
  }

  public static PrefetchConfig defaults() {
    return new PrefetchConfig(PrefetchPolicy.PROFILE, 8, 0, Duration.ofSeconds(30));
  }
}

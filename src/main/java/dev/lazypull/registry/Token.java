package dev.lazypull.registry;

/**
 * A bearer token and when it stops being used: {@code expires_in} seconds (60 when absent) after it
 * was obtained, minus a margin of a fifth of its life (at most 30 s), so it is refreshed before the
 * registry starts refusing it. {@link #toString} hides the token.
 */
record Token(String value, long obtainedNanos, long lifetimeNanos) {
  static final long DEFAULT_LIFETIME_SECONDS = 60;

  static Token of(String value, long expiresInSeconds, long nowNanos) {
    long s = expiresInSeconds > 0 ? expiresInSeconds : DEFAULT_LIFETIME_SECONDS;
    return new Token(value, nowNanos, s * 1_000_000_000L);
  }

  boolean usable(long nowNanos) {
    long margin = Math.min(lifetimeNanos / 5, 30_000_000_000L);
    return nowNanos - obtainedNanos < lifetimeNanos - margin;
  }

  String header() {
    return "Bearer " + value;
  }

  @Override
  public String toString() {
    return "Token[***]";
  }
}

package dev.lazypull.metrics;

import java.util.concurrent.atomic.LongAdder;

/**
 * A fixed-bucket latency histogram in seconds (Prometheus semantics: cumulative buckets, sum,
 * count).
 */
public final class Histogram {
  /** 100 µs to 60 s: covers a page-cache hit on a warm registry up to a read deadline. */
  public static final double[] LATENCY_BUCKETS = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    30, 60
  };

  /**
   * 5 µs to 60 s, for the time the daemon takes per kernel request: a request answered from the
   * chunk map (no fetch) takes microseconds, so the low end is finer than {@link #LATENCY_BUCKETS};
   * from 100 µs up the bounds are the same.
   */
  public static final double[] EVENT_BUCKETS = {
    0.000005, 0.00001, 0.00002, 0.00003, 0.00005, 0.000075, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
  };

  private final double[] bounds;
  private final LongAdder[] counts;
  private final LongAdder count = new LongAdder();
  private final LongAdder sumNanos = new LongAdder();

  public Histogram(double[] bounds) {
    this.bounds = bounds.clone();
    this.counts = new LongAdder[bounds.length];
    for (int i = 0; i < counts.length; i++) {
      counts[i] = new LongAdder();
    }
  }

  public static Histogram latency() {
    return new Histogram(LATENCY_BUCKETS);
  }

  /** With {@link #EVENT_BUCKETS}: the time the daemon takes to answer one kernel request. */
  public static Histogram eventLatency() {
    return new Histogram(EVENT_BUCKETS);
  }

  public void observeNanos(long nanos) {
    double seconds = nanos / 1e9;
    for (int i = 0; i < bounds.length; i++) {
      if (seconds <= bounds[i]) {
        counts[i].increment();
        break;
      }
    }
    count.increment();
    sumNanos.add(nanos);
  }

  /** Writes {@code name_bucket}, {@code name_sum}, {@code name_count} lines. */
  public void write(PrometheusText out, String name, String help, String labels) {
    out.header(name, help, "histogram");
    long cumulative = 0;
    String sep = labels.isEmpty() ? "" : labels + ",";
    for (int i = 0; i < bounds.length; i++) {
      cumulative += counts[i].sum();
      out.sample(name + "_bucket", "{" + sep + "le=\"" + bounds[i] + "\"}", cumulative);
    }
    out.sample(name + "_bucket", "{" + sep + "le=\"+Inf\"}", count.sum());
    String l = labels.isEmpty() ? "" : "{" + labels + "}";
    out.sample(name + "_sum", l, sumNanos.sum() / 1e9);
    out.sample(name + "_count", l, count.sum());
  }
}

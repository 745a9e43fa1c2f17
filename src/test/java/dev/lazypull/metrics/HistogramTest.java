package dev.lazypull.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

class HistogramTest {
  private static final long MS = 1_000_000;

  /** Bucket upper bounds (le) to cumulative counts, in the order written, +Inf last. */
  private static Map<Double, Long> buckets(String text, String name) {
    Map<Double, Long> out = new LinkedHashMap<>();
    for (String line : text.split("\n")) {
      if (line.startsWith(name + "_bucket{")) {
        String le = line.substring(line.indexOf("le=\"") + 4, line.indexOf("\"}"));
        out.put(
            le.equals("+Inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(le),
            Long.parseLong(line.substring(line.lastIndexOf(' ') + 1)));
      }
    }
    return out;
  }

  private static String value(String text, String series) {
    for (String line : text.split("\n")) {
      if (line.startsWith(series + " ")) {
        return line.substring(series.length() + 1);
      }
    }
    throw new AssertionError("no " + series + " in\n" + text);
  }

  /**
   * Prometheus' histogram_quantile: linear interpolation inside the bucket where rank q*count
   * falls.
   */
  private static double quantile(double q, Map<Double, Long> buckets) {
    List<Map.Entry<Double, Long>> b = new ArrayList<>(buckets.entrySet());
    double rank = q * b.get(b.size() - 1).getValue();
    double lower = 0;
    long below = 0;
    for (Map.Entry<Double, Long> e : b) {
      if (e.getValue() >= rank) {
        return lower + (e.getKey() - lower) * (rank - below) / (e.getValue() - below);
      }
      lower = e.getKey();
      below = e.getValue();
    }
    throw new AssertionError();
  }

  @Test
  void writesCumulativeBucketsSumAndCountExactly() {
    Histogram h = new Histogram(new double[] {0.5, 1, 2.5});
    h.observeNanos(100 * MS);
    h.observeNanos(500 * MS); // exactly on a bound: le is "less than or equal"
    h.observeNanos(750 * MS);
    h.observeNanos(3000 * MS); // above every bound: only in +Inf
    PrometheusText out = new PrometheusText();
    h.write(out, "op_seconds", "How long an op took.", "");
    assertEquals(
        """
        # HELP op_seconds How long an op took.
        # TYPE op_seconds histogram
        op_seconds_bucket{le="0.5"} 2
        op_seconds_bucket{le="1.0"} 3
        op_seconds_bucket{le="2.5"} 3
        op_seconds_bucket{le="+Inf"} 4
        op_seconds_sum 4.35
        op_seconds_count 4
        """,
        out.toString());
  }

  @Test
  void labelsGoOnEverySeriesAndTwoLabelSetsShareOneHeader() {
    Histogram a = new Histogram(new double[] {1});
    Histogram b = new Histogram(new double[] {1});
    a.observeNanos(2000 * MS);
    b.observeNanos(0);
    PrometheusText out = new PrometheusText();
    a.write(out, "op_seconds", "h", PrometheusText.label("fsid", "a"));
    b.write(out, "op_seconds", "h", PrometheusText.label("fsid", "b"));
    assertEquals(
        """
        # HELP op_seconds h
        # TYPE op_seconds histogram
        op_seconds_bucket{fsid="a",le="1.0"} 0
        op_seconds_bucket{fsid="a",le="+Inf"} 1
        op_seconds_sum{fsid="a"} 2
        op_seconds_count{fsid="a"} 1
        op_seconds_bucket{fsid="b",le="1.0"} 1
        op_seconds_bucket{fsid="b",le="+Inf"} 1
        op_seconds_sum{fsid="b"} 0
        op_seconds_count{fsid="b"} 1
        """,
        out.toString());
  }

  @Test
  void everyLatencyBoundIsInclusiveAndOneNanosecondMoreIsTheNextBucket() {
    double[] bounds = Histogram.LATENCY_BUCKETS;
    for (int i = 1; i < bounds.length; i++) {
      assertTrue(bounds[i] > bounds[i - 1], "ascending at " + i);
    }
    assertEquals(0.0001, bounds[0]);
    assertEquals(60, bounds[bounds.length - 1]);
    for (int i = 0; i < bounds.length; i++) {
      long onBound = Math.round(bounds[i] * 1e9);
      Histogram h = Histogram.latency();
      h.observeNanos(onBound);
      h.observeNanos(onBound + 1);
      PrometheusText out = new PrometheusText();
      h.write(out, "t", "h", "");
      List<Long> cumulative = new ArrayList<>(buckets(out.toString(), "t").values());
      assertEquals(bounds.length + 1, cumulative.size());
      for (int j = 0; j < bounds.length; j++) {
        long want = j < i ? 0 : j == i ? 1 : 2;
        assertEquals(
            want,
            cumulative.get(j),
            "le=" + bounds[j] + " after observing " + onBound + " and +1 ns");
      }
      assertEquals(2, cumulative.get(bounds.length), "+Inf counts everything");
    }
  }

  @Test
  void eventBucketsResolveMicrosecondsAndMatchTheLatencyBucketsFrom100Microseconds() {
    double[] ev = Histogram.EVENT_BUCKETS;
    for (int i = 1; i < ev.length; i++) {
      assertTrue(ev[i] > ev[i - 1], "ascending at " + i);
    }
    assertEquals(0.000005, ev[0]);
    int at = Arrays.binarySearch(ev, 0.0001);
    assertEquals(
        List.of(Arrays.stream(Histogram.LATENCY_BUCKETS).boxed().toArray(Double[]::new)),
        List.of(Arrays.stream(ev, at, ev.length).boxed().toArray(Double[]::new)));
    Histogram h = Histogram.eventLatency();
    h.observeNanos(4_000); // 4 µs
    h.observeNanos(25_000); // 25 µs
    h.observeNanos(30_000); // 30 µs: on the bound
    h.observeNanos(90_000); // 90 µs
    PrometheusText out = new PrometheusText();
    h.write(out, "t", "h", "");
    Map<Double, Long> b = buckets(out.toString(), "t");
    assertEquals(1, b.get(0.000005));
    assertEquals(1, b.get(0.00002));
    assertEquals(3, b.get(0.00003));
    assertEquals(3, b.get(0.000075));
    assertEquals(4, b.get(0.0001));
    assertEquals(4, b.get(Double.POSITIVE_INFINITY));
  }

  @Test
  void leLabelsParseBackToTheBoundsAndAnEmptyHistogramIsAllZeros() {
    PrometheusText out = new PrometheusText();
    Histogram.latency().write(out, "t", "h", "");
    String text = out.toString();
    Map<Double, Long> b = buckets(text, "t");
    List<Double> les = new ArrayList<>(b.keySet());
    for (int i = 0; i < Histogram.LATENCY_BUCKETS.length; i++) {
      assertEquals(Histogram.LATENCY_BUCKETS[i], les.get(i));
    }
    assertEquals(Double.POSITIVE_INFINITY, les.get(les.size() - 1));
    assertTrue(b.values().stream().allMatch(c -> c == 0));
    assertEquals("0", value(text, "t_sum"));
    assertEquals("0", value(text, "t_count"));
  }

  @Test
  void bucketsGivePrometheusTheRightPercentiles() {
    Histogram h = Histogram.latency();
    for (long ms = 1; ms <= 100; ms++) { // 1 ms .. 100 ms, one each
      h.observeNanos(ms * MS);
    }
    PrometheusText out = new PrometheusText();
    h.write(out, "t", "h", "");
    String text = out.toString();
    Map<Double, Long> b = buckets(text, "t");
    assertEquals(1, b.get(0.001));
    assertEquals(2, b.get(0.0025));
    assertEquals(5, b.get(0.005));
    assertEquals(10, b.get(0.01));
    assertEquals(25, b.get(0.025));
    assertEquals(50, b.get(0.05));
    assertEquals(100, b.get(0.1));
    assertEquals(100, b.get(60.0));
    assertEquals(100, b.get(Double.POSITIVE_INFINITY));
    // these percentiles fall on bucket bounds or interpolate linearly between them, exactly
    assertEquals(0.010, quantile(0.10, b), 1e-12);
    assertEquals(0.050, quantile(0.50, b), 1e-12);
    assertEquals(0.075, quantile(0.75, b), 1e-12);
    assertEquals(0.090, quantile(0.90, b), 1e-12);
    assertEquals(0.099, quantile(0.99, b), 1e-12);
    assertEquals(5.05, Double.parseDouble(value(text, "t_sum")), 1e-12, "1 + 2 + ... + 100 ms");
    assertEquals("100", value(text, "t_count"));
  }

  @Test
  void theBoundsAreCopied() {
    double[] bounds = {1, 2};
    Histogram h = new Histogram(bounds);
    bounds[0] = 100;
    h.observeNanos(1500 * MS);
    PrometheusText out = new PrometheusText();
    h.write(out, "t", "h", "");
    assertEquals(
        Map.of(1.0, 0L, 2.0, 1L, Double.POSITIVE_INFINITY, 1L), buckets(out.toString(), "t"));
  }

  @Test
  void concurrentObservationsAreAllCounted() throws Exception {
    Histogram h = new Histogram(new double[] {0.001, 1});
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        done.add(
            pool.submit(
                () -> {
                  for (int i = 0; i < 25_000; i++) {
                    h.observeNanos(i % 2 == 0 ? 500_000 : 5 * MS); // 0.5 ms and 5 ms alternately
                  }
                }));
      }
      for (Future<?> f : done) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }
    PrometheusText out = new PrometheusText();
    h.write(out, "t", "h", "");
    String text = out.toString();
    assertEquals(
        Map.of(0.001, 50_000L, 1.0, 100_000L, Double.POSITIVE_INFINITY, 100_000L),
        buckets(text, "t"));
    assertEquals("100000", value(text, "t_count"));
    assertEquals(
        275, Double.parseDouble(value(text, "t_sum")), 1e-9, "50000 × 0.5 ms + 50000 × 5 ms");
  }
}

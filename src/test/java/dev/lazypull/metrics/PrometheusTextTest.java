package dev.lazypull.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class PrometheusTextTest {
  /** The value token of the one-sample exposition {@code name value\n}. */
  private static String valueOf(double v) {
    String text = new PrometheusText().sample("m", "", v).toString();
    assertTrue(
        text.startsWith("m ") && text.endsWith("\n") && text.indexOf('\n') == text.length() - 1,
        text);
    return text.substring(2, text.length() - 1);
  }

  @Test
  void countersAndGaugesAreHelpTypeAndSampleLines() {
    String text =
        new PrometheusText()
            .counter("lazypull_reads_total", "READs answered.", 3)
            .gauge("lazypull_reads_inflight", "READs in flight.", 0)
            .toString();
    assertEquals(
        """
        # HELP lazypull_reads_total READs answered.
        # TYPE lazypull_reads_total counter
        lazypull_reads_total 3
        # HELP lazypull_reads_inflight READs in flight.
        # TYPE lazypull_reads_inflight gauge
        lazypull_reads_inflight 0
        """,
        text);
    assertEquals("", new PrometheusText().toString());
  }

  @Test
  void aFamilyHasOneHeaderHoweverManySamples() {
    PrometheusText t = new PrometheusText();
    t.header("lazypull_image_ready_bytes", "Bytes present.", "gauge")
        .sample("lazypull_image_ready_bytes", "{" + PrometheusText.label("fsid", "a") + "}", 1)
        .header(
            "lazypull_image_ready_bytes",
            "Other help.",
            "counter") // ignored: the family is declared
        .sample("lazypull_image_ready_bytes", "{" + PrometheusText.label("fsid", "b") + "}", 2)
        .counter("lazypull_x_total", "X.", 5)
        .counter("lazypull_x_total", "X.", 6);
    assertEquals(
        """
        # HELP lazypull_image_ready_bytes Bytes present.
        # TYPE lazypull_image_ready_bytes gauge
        lazypull_image_ready_bytes{fsid="a"} 1
        lazypull_image_ready_bytes{fsid="b"} 2
        # HELP lazypull_x_total X.
        # TYPE lazypull_x_total counter
        lazypull_x_total 5
        lazypull_x_total 6
        """,
        t.toString());
  }

  @Test
  void helpEscapesBackslashAndNewlineOnly() {
    String text =
        new PrometheusText().header("m", "C:\\dir \"quoted\"\nline two", "gauge").toString();
    // the format escapes \ and newline in HELP; a double quote is only escaped in label values
    assertEquals("# HELP m C:\\\\dir \"quoted\"\\nline two\n# TYPE m gauge\n", text);
    assertEquals(2, text.split("\n").length, "no raw newline splits the HELP line");
  }

  @Test
  void labelValuesEscapeBackslashQuoteAndNewlineOnce() {
    assertEquals("fsid=\"img\"", PrometheusText.label("fsid", "img"));
    assertEquals("path=\"a\\\\b\\\"c\\nd\"", PrometheusText.label("path", "a\\b\"c\nd"));
    // a backslash before a quote: each escaped on its own, not the quote's escape escaped again
    assertEquals("v=\"\\\\\\\"\"", PrometheusText.label("v", "\\\""));
    assertEquals(
        "v=\"\\\\n\"", PrometheusText.label("v", "\\n"), "a literal backslash-n is not a newline");
    assertEquals(
        "v=\"tab\there ü\"",
        PrometheusText.label("v", "tab\there ü"),
        "other characters pass as is");
    assertEquals("v=\"\"", PrometheusText.label("v", ""));
  }

  @Test
  void integralValuesPrintWithoutAFraction() {
    assertEquals("0", valueOf(0));
    assertEquals("0", valueOf(-0.0));
    assertEquals("3", valueOf(3));
    assertEquals("-2", valueOf(-2));
    assertEquals("1073741824", valueOf(1 << 30));
    assertEquals(
        "999999999999999", valueOf(999_999_999_999_999d), "below 1e15: every digit, no exponent");
  }

  @Test
  void otherValuesPrintSoTheyParseBackExactly() {
    assertEquals("0.5", valueOf(0.5));
    assertEquals("4.35", valueOf(4.35));
    assertEquals(
        1e15, Double.parseDouble(valueOf(1e15)), "large values use an exponent, still exact");
    assertEquals(9.2e18, Double.parseDouble(valueOf(9.2e18)));
    Random rnd = new Random(7);
    for (int i = 0; i < 10_000; i++) {
      double v =
          switch (i % 3) {
            case 0 -> rnd.nextDouble();
            case 1 -> (rnd.nextDouble() - 0.5) * Math.pow(10, rnd.nextInt(40) - 20);
            default -> Double.longBitsToDouble(rnd.nextLong());
          };
      if (Double.isNaN(v) || Double.isInfinite(v)) {
        continue;
      }
      String token = valueOf(v);
      assertEquals(v, Double.parseDouble(token), token);
      assertTrue(token.matches("-?[0-9]+(\\.[0-9]+)?(E-?[0-9]+)?"), token);
    }
  }

  @Test
  void nanAndInfinitiesUseSpellingsThePrometheusParserAccepts() {
    // Prometheus parses values with Go's strconv.ParseFloat: NaN, Inf and Infinity, signed, any
    // case
    for (double v : new double[] {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY}) {
      String token = valueOf(v);
      assertTrue(token.matches("(?i)[+-]?(nan|inf|infinity)"), token);
      assertEquals(v, Double.parseDouble(token), token);
    }
  }
}

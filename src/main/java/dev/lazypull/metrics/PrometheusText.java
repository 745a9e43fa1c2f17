package dev.lazypull.metrics;

import java.util.HashSet;
import java.util.Set;

/** Builds the Prometheus text exposition format (version 0.0.4). */
public final class PrometheusText {
  private final StringBuilder b = new StringBuilder(8192);
  private final Set<String> headers = new HashSet<>();

  /** HELP and TYPE lines, once per metric family. */
  public PrometheusText header(String name, String help, String type) {
    if (headers.add(name)) {
      b.append("# HELP ")
          .append(name)
          .append(' ')
          .append(help.replace("\\", "\\\\").replace("\n", "\\n"))
          .append('\n');
      b.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    }
    return this;
  }

  public PrometheusText sample(String name, String labels, double value) {
    b.append(name).append(labels);
    if (value == Math.rint(value) && Math.abs(value) < 1e15) {
      b.append(' ').append((long) value).append('\n');
    } else {
      b.append(' ').append(value).append('\n');
    }
    return this;
  }

  public PrometheusText counter(String name, String help, double value) {
    return header(name, help, "counter").sample(name, "", value);
  }

  public PrometheusText gauge(String name, String help, double value) {
    return header(name, help, "gauge").sample(name, "", value);
  }

  /** A label value, escaped. */
  public static String label(String key, String value) {
    return key
        + "=\""
        + value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")
        + "\"";
  }

  @Override
  public String toString() {
    return b.toString();
  }
}

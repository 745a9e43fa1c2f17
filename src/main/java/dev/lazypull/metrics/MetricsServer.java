package dev.lazypull.metrics;

import com.sun.net.httpserver.HttpServer;
import dev.lazypull.sys.DaemonThreads;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * Serves {@code GET /metrics} in Prometheus text format from the JDK's HTTP server. Loopback only
 * unless the operator explicitly allows another address. Subsystems add collectors; each scrape
 * asks all of them.
 */
public final class MetricsServer implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(MetricsServer.class.getName());
  private final HttpServer server;
  private final List<Consumer<PrometheusText>> collectors = new CopyOnWriteArrayList<>();

  private MetricsServer(HttpServer server) {
    this.server = server;
  }

  /**
   * @param listen {@code HOST:PORT}; HOST must be a loopback address unless {@code allowRemote}
   */
  public static MetricsServer start(String listen, boolean allowRemote) throws IOException {
    int colon = listen.lastIndexOf(':');
    if (colon <= 0) {
      throw new IllegalArgumentException(
          "metrics listen address must be HOST:PORT, got '" + listen + "'");
    }
    String host = listen.substring(0, colon).replace("[", "").replace("]", "");
    int port;
    try {
      port = Integer.parseInt(listen.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("bad metrics port in '" + listen + "'");
    }
    InetAddress addr = InetAddress.getByName(host);
    if (!addr.isLoopbackAddress() && !allowRemote) {
      throw new IllegalArgumentException(
          "metrics address "
              + listen
              + " is not loopback; set "
              + "metrics.allow_remote = true to expose it");
    }
    HttpServer server = HttpServer.create(new InetSocketAddress(addr, port), 16);
    MetricsServer m = new MetricsServer(server);
    server.createContext(
        "/metrics",
        exchange -> {
          try (exchange) {
            if (!"GET".equals(exchange.getRequestMethod())) {
              exchange.sendResponseHeaders(405, -1);
              return;
            }
            byte[] body = m.scrape().getBytes(StandardCharsets.UTF_8);
            exchange
                .getResponseHeaders()
                .set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
              out.write(body);
            }
          }
        });
    server.setExecutor(Executors.newSingleThreadExecutor(DaemonThreads.named("lazypull-metrics")));
    server.start();
    LOG.info("metrics on http://" + listen + "/metrics");
    return m;
  }

  public int port() {
    return server.getAddress().getPort();
  }

  public void add(Consumer<PrometheusText> collector) {
    collectors.add(collector);
  }

  public String scrape() {
    PrometheusText out = new PrometheusText();
    for (Consumer<PrometheusText> c : collectors) {
      try {
        c.accept(out);
      } catch (RuntimeException e) {
        LOG.warning("metrics collector failed: " + e);
      }
    }
    return out.toString();
  }

  @Override
  public void close() {
    server.stop(0);
  }
}

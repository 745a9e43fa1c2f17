package dev.lazypull.nbd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.nbd.protocol.ExportInfo;
import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.testing.NbdTestClient;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Closing the server while connections are still starting or still have requests in flight: the
 * pools a connection uses (the handshake timer, the reply pool) must outlive it, and a connection
 * the server accepted must be closed with it.
 */
@Timeout(60)
class NbdServerCloseTest {
  static final long SIZE = 1 << 20;
  @TempDir Path dir;

  /**
   * Warnings of the server's classes: the race showed as "unexpected failure" with its exception.
   */
  private final List<String> warnings = new CopyOnWriteArrayList<>();

  private final Logger serverLog = Logger.getLogger(NbdServer.class.getPackageName());
  private final Handler watch =
      new Handler() {
        @Override
        public void publish(LogRecord r) {
          if (r.getLevel().intValue() >= Level.WARNING.intValue()) {
            warnings.add(
                r.getMessage() + (r.getThrown() != null ? " (" + r.getThrown() + ")" : ""));
          }
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
      };
  private Level savedLevel;
  private final HeldDevice device = new HeldDevice();
  private Path socket;
  private NbdServer server;

  /** Zeros, whose data is "fetched" only when the test completes {@link #fetched}. */
  static final class HeldDevice implements ExportDevice {
    final CompletableFuture<Void> fetched = new CompletableFuture<>();
    final CountDownLatch asked = new CountDownLatch(1);

    @Override
    public long size() {
      return SIZE;
    }

    @Override
    public List<Run> runs(long offset, long length) {
      return List.of(new Run(offset, length, false));
    }

    @Override
    public CompletableFuture<Void> prepare(long offset, long length) {
      asked.countDown();
      return fetched;
    }

    @Override
    public void read(long offset, ByteBuffer dst) {
      while (dst.hasRemaining()) {
        dst.put((byte) 0);
      }
    }
  }

  private NbdServer start(NbdServer.Options options, ThreadFactory connectionThreads)
      throws IOException {
    server = new NbdServer(device, new ExportInfo("held", "", SIZE), options, connectionThreads);
    socket = dir.resolve("nbd.sock");
    server.listen(new ListenAddress.Unix(socket), false);
    return server;
  }

  @BeforeEach
  void watchWarnings() {
    savedLevel = serverLog.getLevel();
    if (!serverLog.isLoggable(Level.WARNING)) { // an earlier test in this JVM configured less
      serverLog.setLevel(Level.WARNING);
    }
    serverLog.addHandler(watch);
  }

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
    serverLog.removeHandler(watch);
    serverLog.setLevel(savedLevel);
  }

  /**
   * The race a test run once showed (RejectedExecutionException from scheduleHandshakeDeadline): a
   * connection accepted just before close, whose thread begins its handshake only after close has
   * returned. Its pools are still up, so it ends quietly like any connection the server
   * disconnected.
   */
  @Test
  void aConnectionWhoseThreadStartsAfterCloseEndsQuietly() throws Exception {
    CountDownLatch started = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    List<Thread> threads = new CopyOnWriteArrayList<>();
    start(
        NbdServer.Options.defaults(),
        r -> {
          Thread t =
              new Thread(
                  () -> {
                    started.countDown();
                    try {
                      release.await();
                    } catch (InterruptedException e) {
                      return;
                    }
                    r.run();
                  },
                  "held-connection");
          t.setDaemon(true);
          threads.add(t);
          return t;
        });
    try (NbdTestClient c = NbdTestClient.connect(socket)) {
      assertTrue(
          started.await(10, TimeUnit.SECONDS),
          "the server accepted the connection and started its thread");
      assertEquals(1, server.connectionCount());
      server.close();
      release.countDown();
      threads.get(0).join(TimeUnit.SECONDS.toMillis(10));
      assertFalse(threads.get(0).isAlive(), "the connection ended");
      assertTrue(c.closedByServer());
    }
    assertEquals(0, server.connectionCount());
    assertEquals(List.of(), warnings, "no failure from a pool shut down under the connection");
  }

  /**
   * A READ waiting for its fetch when the server closes: the fetch completes afterwards, its reply
   * runs (into the closed socket) on the reply pool, which is still up, and the connection's thread
   * is released at once rather than after the read deadline.
   */
  @Test
  void aReadInFlightWhenTheServerClosesStillReleasesItsConnection() throws Exception {
    start(
        NbdServer.Options.defaults().withReadDeadline(Duration.ofMinutes(5)),
        r -> {
          Thread t = new Thread(r, "connection");
          t.setDaemon(true);
          return t;
        });
    try (NbdTestClient c = NbdTestClient.connect(socket)) {
      c.exportName("", true);
      c.request(Nbd.CMD_READ, 0, 1, 0, 4096);
      c.request(Nbd.CMD_FLUSH, 0, 2, 0, 0);
      assertEquals(
          2, c.simpleReply(0).cookie(), "the FLUSH is answered: the READ before it is waiting");
      assertEquals(0, device.asked.getCount(), "for its fetch");
      server.close();
      assertTrue(c.closedByServer(), "closing disconnects it");
      assertEquals(1, server.connectionCount(), "its READ is still in flight");
      device.fetched.complete(null);
      assertTrue(
          server.awaitConnections(0, Duration.ofSeconds(10)), "the READ was answered and released");
    }
    assertEquals(List.of(), warnings);
  }

  @Test
  void aClosedServerTakesNoConnections() throws Exception {
    start(
        NbdServer.Options.defaults(),
        r -> {
          throw new AssertionError("no connection may start");
        });
    server.close();
    assertThrows(
        IOException.class,
        () -> server.listen(new ListenAddress.Unix(dir.resolve("again.sock")), false));
    assertEquals(0, server.connectionCount());
  }
}

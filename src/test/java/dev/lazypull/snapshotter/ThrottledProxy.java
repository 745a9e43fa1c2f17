package dev.lazypull.snapshotter;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.TimeUnit;

/**
 * A TCP proxy on loopback whose downstream direction (upstream → client) shares one bandwidth limit
 * across all connections, like one network link in front of a registry: benchmarks compare pulls
 * over a link of a given speed instead of loopback's. Upstream-bound bytes pass unthrottled.
 */
final class ThrottledProxy implements AutoCloseable {
  /** How much transmission time a late sleeper may make up at once. */
  private static final long BURST_NANOS = TimeUnit.MILLISECONDS.toNanos(20);

  private final ServerSocket server;
  private final InetSocketAddress upstream;
  private final double bytesPerNano;
  private long nextFreeNanos = System.nanoTime();
  private volatile boolean closed;

  ThrottledProxy(InetSocketAddress upstream, long bitsPerSecond) throws IOException {
    this.upstream = upstream;
    this.bytesPerNano = bitsPerSecond / 8.0 / 1e9;
    this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    Thread accept = new Thread(this::acceptLoop, "throttled-proxy-accept");
    accept.setDaemon(true);
    accept.start();
  }

  String host() {
    return "127.0.0.1:" + server.getLocalPort();
  }

  private void acceptLoop() {
    while (!closed) {
      try {
        Socket client = server.accept();
        Socket up = new Socket(upstream.getAddress(), upstream.getPort());
        client.setTcpNoDelay(true);
        up.setTcpNoDelay(true);
        pump(client.getInputStream(), up.getOutputStream(), false, client, up);
        pump(up.getInputStream(), client.getOutputStream(), true, client, up);
      } catch (IOException e) {
        if (!closed) {
          System.err.println("throttled proxy: " + e);
        }
      }
    }
  }

  private void pump(InputStream in, OutputStream out, boolean throttled, Socket a, Socket b) {
    Thread t =
        new Thread(
            () -> {
              byte[] buf = new byte[16 * 1024];
              try {
                int n;
                while ((n = in.read(buf)) >= 0) {
                  if (throttled) {
                    take(n);
                  }
                  out.write(buf, 0, n);
                  out.flush();
                }
              } catch (IOException | InterruptedException e) {
                // the other side closed
              } finally {
                closeQuietly(a);
                closeQuietly(b);
              }
            },
            "throttled-proxy-pump");
    t.setDaemon(true);
    t.start();
  }

  /** Waits until the link has carried everything before these {@code n} bytes at its rate. */
  private void take(int n) throws InterruptedException {
    long until;
    synchronized (this) {
      long now = System.nanoTime();
      long start =
          Math.max(now - BURST_NANOS, nextFreeNanos); // a late wake-up is made up, not lost
      nextFreeNanos = start + (long) (n / bytesPerNano);
      until = nextFreeNanos;
    }
    long wait = until - System.nanoTime();
    if (wait > 0) {
      TimeUnit.NANOSECONDS.sleep(wait); // the link's transmission time: pacing, not synchronization
    }
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException e) {
      // closing
    }
  }

  @Override
  public void close() throws IOException {
    closed = true;
    server.close();
  }
}

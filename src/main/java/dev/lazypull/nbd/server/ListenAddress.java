package dev.lazypull.nbd.server;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;

/**
 * Where an NBD server listens: {@code unix:PATH} or {@code tcp:HOST:PORT} ({@code tcp:[::1]:PORT}
 * for IPv6). NBD has no authentication and we offer no TLS, so TCP is refused on anything but
 * loopback unless the caller explicitly allows remote clients.
 */
public sealed interface ListenAddress {
  record Unix(Path path) implements ListenAddress {
    @Override
    public String toString() {
      return "unix:" + path;
    }
  }

  record Tcp(String host, int port) implements ListenAddress {
    @Override
    public String toString() {
      return "tcp:" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
  }

  /** Parses a listen address; IllegalArgumentException says what is wrong. */
  static ListenAddress parse(String text) {
    if (text.startsWith("unix:")) {
      String p = text.substring(5);
      if (p.isEmpty()) {
        throw new IllegalArgumentException("unix: needs a socket path");
      }
      return new Unix(Path.of(p).toAbsolutePath().normalize());
    }
    if (text.startsWith("tcp:")) {
      String rest = text.substring(4);
      int colon = rest.lastIndexOf(':');
      if (colon <= 0) {
        throw new IllegalArgumentException("tcp: wants HOST:PORT, got '" + rest + "'");
      }
      String host = rest.substring(0, colon);
      if (host.startsWith("[") && host.endsWith("]")) {
        host = host.substring(1, host.length() - 1);
      }
      int port;
      try {
        port = Integer.parseInt(rest.substring(colon + 1));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("bad TCP port in '" + text + "'");
      }
      if (port < 0 || port > 65535 || host.isEmpty()) {
        throw new IllegalArgumentException("bad TCP address '" + text + "'");
      }
      return new Tcp(host, port);
    }
    throw new IllegalArgumentException(
        "listen address must be unix:PATH or tcp:HOST:PORT, not '" + text + "'");
  }

  /**
   * Resolves a TCP address for binding, refusing a non-loopback one unless {@code allowRemote}.
   *
   * @throws IllegalArgumentException if the host is not loopback and remote clients are not allowed
   */
  static InetSocketAddress resolve(Tcp tcp, boolean allowRemote) throws UnknownHostException {
    InetAddress addr = InetAddress.getByName(tcp.host());
    if (!allowRemote && !addr.isLoopbackAddress()) {
      throw new IllegalArgumentException(
          "refusing to serve NBD on "
              + tcp
              + " ("
              + addr.getHostAddress()
              + "): it is not a loopback address, and NBD offers no authentication or encryption here; use a unix "
              + "socket, 127.0.0.1, or --allow-remote if the network is trusted");
    }
    return new InetSocketAddress(addr, tcp.port());
  }
}

package dev.lazypull.registry;

import java.util.Locale;

/**
 * Docker's convention for registries on this machine: {@code localhost}, {@code 127.0.0.0/8} and
 * {@code ::1} (with or without a port) are usable without configuration — HTTPS is tried first and
 * plain HTTP used when the server does not speak TLS. Only literal addresses and the name {@code
 * localhost} count: no name is resolved, so a DNS answer can never turn a remote registry into a
 * "loopback" one.
 */
public final class Loopback {
  private Loopback() {}

  /** Whether {@code registry} ({@code host[:port]} as written in references) names this machine. */
  public static boolean is(String registry) {
    String host = host(registry).toLowerCase(Locale.ROOT);
    if (host.equals("localhost")) {
      return true;
    }
    if (host.equals("::1") || host.equals("0:0:0:0:0:0:0:1")) {
      return true;
    }
    String[] parts = host.split("\\.", -1);
    if (parts.length != 4) {
      return false;
    }
    for (int i = 0; i < 4; i++) {
      String p = parts[i];
      if (p.isEmpty() || p.length() > 3 || !p.chars().allMatch(c -> c >= '0' && c <= '9')) {
        return false;
      }
      int v = Integer.parseInt(p);
      if (v > 255 || (i == 0 && v != 127)) {
        return false;
      }
    }
    return true;
  }

  /** The host part of {@code host[:port]} or {@code [v6][:port]}, without brackets. */
  static String host(String registry) {
    if (registry.startsWith("[")) {
      int end = registry.indexOf(']');
      return end < 0 ? registry : registry.substring(1, end);
    }
    int colon = registry.indexOf(':');
    if (colon >= 0 && registry.indexOf(':', colon + 1) >= 0) {
      return registry; // a bare IPv6 address
    }
    return colon < 0 ? registry : registry.substring(0, colon);
  }
}

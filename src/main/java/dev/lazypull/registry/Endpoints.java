package dev.lazypull.registry;

import dev.lazypull.image.ImageReference;
import java.io.IOException;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;
import java.util.logging.Logger;
import okhttp3.HttpUrl;

/**
 * The ordered endpoints for a registry: its configured mirrors, then the origin. A mirror that
 * fails is skipped for the cool-down period (the origin never is), so a dead mirror costs one
 * failed attempt per cool-down, not one per request.
 *
 * <p>The origin's scheme: plain HTTP when configured ({@code plain_http}, {@code --plain-http}) or
 * asked for at run time for that registry ({@link #usePlainHttp}, e.g. an image the daemon
 * registered with {@code --plain-http}); else HTTPS — except that a loopback registry ({@link
 * Loopback}) that does not speak TLS is spoken to in plain HTTP, as docker does: the first use
 * probes {@code GET /v2/} over HTTPS and, only if that gets no TLS answer (within the connect
 * timeout), over HTTP; the outcome is remembered for the host. A loopback server that answers TLS
 * stays on TLS, certificate verified (an untrusted certificate is an error, not a reason to fall
 * back).
 */
final class Endpoints {
  private static final Logger LOG = Logger.getLogger(Endpoints.class.getName());

  /**
   * Sends {@code GET url} without auth, redirects or retries; returns the HTTP status or throws.
   */
  interface Prober {
    int status(HttpUrl url) throws IOException;
  }

  private final RegistryConfig config;
  private final LongSupplier nanoClock;
  private final Prober prober;
  private final Map<String, Long> coolingUntil = new ConcurrentHashMap<>();

  /** Registries told at run time to use plain HTTP (lower case). */
  private final Set<String> plainHttp = ConcurrentHashMap.newKeySet();

  /**
   * Loopback registries whose scheme a probe settled: true = plain HTTP, false = TLS (lower case).
   */
  private final Map<String, Boolean> loopbackPlain = new ConcurrentHashMap<>();

  private final Map<String, Object> probeLocks = new ConcurrentHashMap<>();

  Endpoints(RegistryConfig config, LongSupplier nanoClock, Prober prober) {
    this.config = config;
    this.nanoClock = nanoClock;
    this.prober = prober;
  }

  /** Speak plain HTTP to {@code registry}'s origin from now on, whatever the configuration says. */
  boolean usePlainHttp(String registry) {
    return plainHttp.add(registry.toLowerCase(Locale.ROOT));
  }

  /**
   * Whether the origin of {@code registry} is spoken to in plain HTTP (probing a loopback registry
   * if unsettled).
   */
  boolean isPlainHttp(String registry) {
    String key = registry.toLowerCase(Locale.ROOT);
    if (config.isPlainHttp(registry) || plainHttp.contains(key)) {
      return true;
    }
    if (!Loopback.is(registry)) {
      return false;
    }
    Boolean known = loopbackPlain.get(key);
    if (known != null) {
      return known;
    }
    synchronized (probeLocks.computeIfAbsent(key, k -> new Object())) {
      known = loopbackPlain.get(key);
      if (known != null) {
        return known;
      }
      Boolean probed = probe(registry);
      if (probed == null) {
        return false; // nothing answered: use HTTPS (its error is reported) and probe again next
        // time
      }
      loopbackPlain.put(key, probed);
      return probed;
    }
  }

  /** true: plain HTTP, false: TLS, null: neither answered. */
  private Boolean probe(String registry) {
    HttpUrl tls = base("https", registry).resolve("/v2/");
    IOException tlsError;
    try {
      prober.status(tls);
      LOG.fine(() -> "loopback registry " + registry + " speaks TLS");
      return false;
    } catch (IOException e) {
      if (Thread.currentThread().isInterrupted()) {
        return null; // the caller is being stopped: decide nothing
      }
      if (RegistryTransport.untrusted(e)) {
        return false; // it speaks TLS; its certificate is refused, and that is the error to report
      }
      tlsError = e;
    }
    try {
      int status = prober.status(base("http", registry).resolve("/v2/"));
      // /v2/ answers 200 or 401 (or 403/404 from odd servers); a 400 is e.g. a TLS server refusing
      // plain HTTP
      if (status == 200 || status == 401 || status == 403 || status == 404) {
        LOG.info(
            "loopback registry "
                + registry
                + " does not speak TLS ("
                + tlsError.getMessage()
                + "); using plain HTTP, as for docker's insecure registries");
        return true;
      }
      LOG.fine(
          () ->
              "loopback registry "
                  + registry
                  + ": no TLS, and /v2/ over plain HTTP answered "
                  + status);
    } catch (IOException e) { // (a timeout is an InterruptedIOException too: not an interruption)
      LOG.fine(
          () ->
              "loopback registry "
                  + registry
                  + " answers neither TLS ("
                  + tlsError
                  + ") nor plain HTTP ("
                  + e
                  + ")");
    }
    return null;
  }

  /**
   * The origin: {@code https://} unless plain HTTP applies (see above); Docker Hub's API host for
   * docker.io.
   */
  Endpoint origin(String registry) {
    return new Endpoint(
        base(isPlainHttp(registry) ? "http" : "https", registry), registry, registry, false);
  }

  private static HttpUrl base(String scheme, String registry) {
    String host =
        registry.equals(ImageReference.Registry.DOCKER_HUB) ? "registry-1.docker.io" : registry;
    HttpUrl base = HttpUrl.parse(scheme + "://" + host + "/");
    if (base == null) {
      throw new IllegalArgumentException("not a registry host: " + registry);
    }
    return base;
  }

  /** Mirrors not cooling down, in configured order, then the origin. */
  List<Endpoint> forPull(String registry) {
    List<Endpoint> out = new ArrayList<>();
    long now = nanoClock.getAsLong();
    for (URI m : config.host(registry).mirrors()) {
      HttpUrl base = HttpUrl.parse(m + "/");
      Endpoint e = new Endpoint(base, registry, m.getRawAuthority(), true);
      Long until = coolingUntil.get(e.base().toString());
      if (until == null || now - until >= 0) {
        out.add(e);
      }
    }
    out.add(origin(registry));
    return out;
  }

  void failed(Endpoint e) {
    if (e.mirror()) {
      coolingUntil.put(
          e.base().toString(), nanoClock.getAsLong() + config.mirrorCooldown().toNanos());
    }
  }

  void succeeded(Endpoint e) {
    if (e.mirror()) {
      coolingUntil.remove(e.base().toString());
    }
  }
}

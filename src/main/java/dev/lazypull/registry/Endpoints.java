package dev.lazypull.registry;

import dev.lazypull.image.ImageReference;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;
import okhttp3.HttpUrl;

/**
 * The ordered endpoints for a registry: its configured mirrors, then the origin. A mirror that fails is
 * skipped for the cool-down period (the origin never is), so a dead mirror costs one failed attempt per
 * cool-down, not one per request.
 */
final class Endpoints {
  private final RegistryConfig config;
  private final LongSupplier nanoClock;
  private final Map<String, Long> coolingUntil = new ConcurrentHashMap<>();

  Endpoints(RegistryConfig config, LongSupplier nanoClock) {
    this.config = config;
    this.nanoClock = nanoClock;
  }

  /** The origin: {@code https://} unless plain HTTP is configured; Docker Hub's API host for docker.io. */
  Endpoint origin(String registry) {
    String scheme = config.isPlainHttp(registry) ? "http" : "https";
    String host = registry.equals(ImageReference.Registry.DOCKER_HUB) ? "registry-1.docker.io" : registry;
    HttpUrl base = HttpUrl.parse(scheme + "://" + host + "/");
    if (base == null) {
      throw new IllegalArgumentException("not a registry host: " + registry);
    }
    return new Endpoint(base, registry, registry, false);
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
      coolingUntil.put(e.base().toString(), nanoClock.getAsLong() + config.mirrorCooldown().toNanos());
    }
  }

  void succeeded(Endpoint e) {
    if (e.mirror()) {
      coolingUntil.remove(e.base().toString());
    }
  }
}

package dev.lazypull.registry;

import okhttp3.HttpUrl;

/**
 * Where requests for one registry go: its origin, or a mirror serving the same {@code /v2/} API.
 *
 * @param base {@code scheme://host[:port]/}
 * @param registry the registry the endpoint serves, as written in references
 * @param credentialKey the host credentials are looked up for (the registry for the origin, the
 *     mirror's {@code host[:port]} for a mirror)
 */
record Endpoint(HttpUrl base, String registry, String credentialKey, boolean mirror) {
  /** {@code host[:port]} as used for auth state and the redirect cache. */
  public String authority() {
    boolean defaultPort = base.port() == HttpUrl.defaultPort(base.scheme());
    return base.host() + (defaultPort ? "" : ":" + base.port());
  }

  /** {@code /v2/<repository>/<suffix...>} on this endpoint. */
  public HttpUrl api(String repository, String... segments) {
    HttpUrl.Builder b = base.newBuilder().encodedPath("/v2/").addPathSegments(repository);
    for (String s : segments) {
      b.addPathSegment(s);
    }
    return b.build();
  }

  /**
   * True if {@code url} is on this endpoint (same scheme, host and port): credentials may go there.
   */
  public boolean sameOrigin(HttpUrl url) {
    return url.scheme().equals(base.scheme())
        && url.host().equals(base.host())
        && url.port() == base.port();
  }

  @Override
  public String toString() {
    return base.scheme() + "://" + authority() + (mirror ? " (mirror of " + registry + ")" : "");
  }
}

package dev.lazypull.registry;

import okhttp3.Headers;
import okhttp3.HttpUrl;
import okhttp3.RequestBody;

/**
 * One request to a registry endpoint, before auth, redirects and retries are applied.
 *
 * @param scope the token scope the request needs
 * @param idempotent GET/HEAD: may be retried and may follow redirects
 * @param redirectKey when set, a redirect target reached by this request is cached under it
 * @param timed whether the whole call (including reading the body) is bounded by the request
 *     timeout
 */
record RegistryRequest(
    String method,
    HttpUrl url,
    Headers headers,
    RequestBody body,
    Scope scope,
    boolean idempotent,
    String redirectKey,
    boolean timed) {

  static RegistryRequest get(HttpUrl url, Scope scope) {
    return new RegistryRequest("GET", url, Headers.of(), null, scope, true, null, true);
  }

  static RegistryRequest head(HttpUrl url, Scope scope) {
    return new RegistryRequest("HEAD", url, Headers.of(), null, scope, true, null, true);
  }

  static RegistryRequest send(
      String method, HttpUrl url, RequestBody body, Scope scope, boolean timed) {
    return new RegistryRequest(method, url, Headers.of(), body, scope, false, null, timed);
  }

  RegistryRequest header(String name, String value) {
    return new RegistryRequest(
        method,
        url,
        headers.newBuilder().set(name, value).build(),
        body,
        scope,
        idempotent,
        redirectKey,
        timed);
  }

  RegistryRequest withMethod(String m) {
    return new RegistryRequest(
        m, url, headers, m.equals("GET") ? null : body, scope, idempotent, redirectKey, timed);
  }

  RegistryRequest cachingRedirectsAs(String key) {
    return new RegistryRequest(method, url, headers, body, scope, idempotent, key, timed);
  }

  RegistryRequest untimed() {
    return new RegistryRequest(method, url, headers, body, scope, idempotent, redirectKey, false);
  }
}

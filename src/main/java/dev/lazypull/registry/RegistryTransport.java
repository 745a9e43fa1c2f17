package dev.lazypull.registry;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.security.cert.CertificateException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.logging.Logger;
import javax.net.ssl.SSLPeerUnverifiedException;
import okhttp3.Call;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;

/**
 * Sends {@link RegistryRequest}s to an endpoint: authorization, redirects and retries, in that
 * nesting.
 *
 * <ul>
 *   <li><b>Retries</b> ({@link RetryPolicy}): idempotent requests only, on connection errors, 5xx
 *       and 429, waiting {@code Retry-After} when given. A response still failing after the last
 *       attempt is returned for the caller to report.
 *   <li><b>Auth</b> ({@link RegistryAuth}): a header is attached up front when the endpoint's
 *       scheme is known; a 401 from the endpoint itself is answered once with a fresh header.
 *       Requests with a one-shot body are not re-sent.
 *   <li><b>Redirects</b>, followed here and not by OkHttp: 301/302/303/307/308 for GET and HEAD,
 *       relative {@code Location}s resolved against the request URL, every header (notably {@code
 *       Range}) kept except {@code Authorization}, which only goes to the endpoint's own
 *       scheme+host+port. An https→http downgrade is refused. With a redirect key, the final target
 *       is cached ({@link RedirectCache}) and tried directly next time; if it fails (401/403 from
 *       an expired presigned URL, or anything else) the request goes through the registry again,
 *       once.
 * </ul>
 */
final class RegistryTransport {
  private static final Logger LOG = Logger.getLogger(RegistryTransport.class.getName());
  static final int MAX_REDIRECTS = 10;

  private final OkHttpClient client;
  private final RegistryAuth auth;
  private final RedirectCache redirects;
  private final Sleeper sleeper;
  private final Duration requestTimeout;

  RegistryTransport(
      OkHttpClient client,
      RegistryAuth auth,
      RedirectCache redirects,
      Sleeper sleeper,
      Duration requestTimeout) {
    this.client = client;
    this.auth = auth;
    this.redirects = redirects;
    this.sleeper = sleeper;
    this.requestTimeout = requestTimeout;
  }

  OkHttpClient client() {
    return client;
  }

  /** Counters shared with the client that owns this transport. */
  final RegistryStats stats = new RegistryStats();

  RegistryAuth auth() {
    return auth;
  }

  /** Sends {@code req}; the caller closes the response. */
  Response execute(Endpoint ep, RegistryRequest req, RetryPolicy policy) throws IOException {
    return retrying(
        () -> authorized(ep, req),
        req.idempotent(),
        policy,
        () -> ep + ": " + req.method() + " " + req.url().encodedPath());
  }

  /** A plain request with retries, no registry auth and no redirects (token endpoints). */
  Response executePlain(Request request, boolean idempotent, RetryPolicy policy)
      throws IOException {
    return executePlain(request, idempotent, policy, requestTimeout);
  }

  /** {@link #executePlain(Request, boolean, RetryPolicy)} with its own whole-call limit. */
  Response executePlain(Request request, boolean idempotent, RetryPolicy policy, Duration timeout)
      throws IOException {
    return retrying(
        () -> {
          Call call = client.newCall(request);
          call.timeout().timeout(timeout.toMillis(), TimeUnit.MILLISECONDS);
          return call.execute();
        },
        idempotent,
        policy,
        () -> request.method() + " " + request.url().host() + request.url().encodedPath());
  }

  private interface Attempt {
    Response run() throws IOException;
  }

  private Response retrying(
      Attempt attempt, boolean idempotent, RetryPolicy policy, Supplier<String> what)
      throws IOException {
    for (int n = 0; ; n++) {
      Response r;
      stats.requests.increment();
      if (n > 0) {
        stats.retries.increment();
      }
      try {
        r = attempt.run();
      } catch (RegistryException e) {
        throw e; // a protocol refusal (bad redirect, token refused): repeating it changes nothing
      } catch (IOException e) {
        if (Thread.currentThread().isInterrupted()
            || !idempotent
            || n >= policy.retries()
            || untrusted(e)) {
          throw e;
        }
        Duration d = policy.backoff(n);
        LOG.fine(() -> what.get() + " failed (" + e + "); retrying in " + d.toMillis() + " ms");
        pause(d);
        continue;
      }
      if (!idempotent || !RetryPolicy.retryableStatus(r.code()) || n >= policy.retries()) {
        return r;
      }
      Duration after = RetryPolicy.parseRetryAfter(r.header("Retry-After"), Instant.now());
      if (after != null && after.compareTo(policy.maxRetryAfter()) > 0) {
        return r; // not worth blocking a reader for; the caller reports the status
      }
      Duration d = after != null ? after : policy.backoff(n);
      int code = r.code();
      r.close();
      LOG.fine(() -> what.get() + " got HTTP " + code + "; retrying in " + d.toMillis() + " ms");
      pause(d);
    }
  }

  /** A certificate the trust store rejects: asking again gets the same certificate. */
  static boolean untrusted(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof CertificateException || t instanceof SSLPeerUnverifiedException) {
        return true;
      }
    }
    return false;
  }

  private void pause(Duration d) throws InterruptedIOException {
    try {
      sleeper.sleep(d);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting to retry");
    }
  }

  private Response authorized(Endpoint ep, RegistryRequest req) throws IOException {
    String header = auth.preemptive(ep, req.scope());
    Response r = follow(ep, req, header);
    if (r.code() != 401 || !ep.sameOrigin(r.request().url())) {
      return r;
    }
    if (req.body() != null && req.body().isOneShot()) {
      return r;
    }
    List<Challenge> challenges = Challenge.parseAll(r.headers("WWW-Authenticate"));
    String next = auth.answer(ep, req.scope(), challenges, header);
    if (next == null) {
      return r;
    }
    r.close();
    return follow(ep, req, next);
  }

  private Response follow(Endpoint ep, RegistryRequest req, String authHeader) throws IOException {
    String key = req.redirectKey();
    if (key != null) {
      HttpUrl cached = redirects.get(key);
      if (cached != null) {
        try {
          Response r = send(cached, req, ep.sameOrigin(cached) ? authHeader : null);
          if (r.isSuccessful()) {
            return r;
          }
          LOG.fine(
              () ->
                  ep
                      + ": cached redirect target on "
                      + cached.host()
                      + " answered "
                      + r.code()
                      + "; going through the registry again");
          r.close();
        } catch (IOException e) {
          LOG.fine(
              () ->
                  ep
                      + ": cached redirect target on "
                      + cached.host()
                      + " failed ("
                      + e
                      + "); going through the registry again");
        }
        redirects.remove(key);
      }
    }
    HttpUrl url = req.url();
    String method = req.method();
    for (int hops = 0; ; hops++) {
      Response r =
          send(
              url,
              method.equals(req.method()) ? req : req.withMethod(method),
              ep.sameOrigin(url) ? authHeader : null);
      if (!isRedirect(r.code()) || !req.idempotent()) {
        if (hops > 0 && key != null && r.isSuccessful()) {
          redirects.put(key, url);
        }
        return r;
      }
      String location = r.header("Location");
      int code = r.code();
      r.close();
      if (hops >= MAX_REDIRECTS) {
        throw new RegistryException(
            ep + ": more than " + MAX_REDIRECTS + " redirects for " + req.url().encodedPath());
      }
      HttpUrl next = location == null ? null : url.resolve(location);
      if (next == null) {
        throw new RegistryException(
            ep
                + ": HTTP "
                + code
                + " redirect without a usable Location for "
                + req.url().encodedPath());
      }
      if (url.isHttps() && !next.isHttps()) {
        throw new RegistryException(
            ep + ": refusing a redirect from https to http (" + next.host() + ")");
      }
      if (code == 303) {
        method = "GET";
      }
      HttpUrl from = url;
      url = next;
      HttpUrl to = next;
      LOG.fine(
          () ->
              ep
                  + ": "
                  + code
                  + " redirect from "
                  + from.host()
                  + " to "
                  + to.host()
                  + (ep.sameOrigin(to) ? "" : " (Authorization dropped)"));
    }
  }

  private static boolean isRedirect(int code) {
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
  }

  private Response send(HttpUrl url, RegistryRequest req, String authHeader) throws IOException {
    Request.Builder b = new Request.Builder().url(url).headers(req.headers());
    if (authHeader != null) {
      b.header("Authorization", authHeader);
    }
    b.method(req.method(), req.body());
    Call call = client.newCall(b.build());
    if (req.timed()) {
      call.timeout().timeout(requestTimeout.toMillis(), TimeUnit.MILLISECONDS);
    }
    return call.execute();
  }
}

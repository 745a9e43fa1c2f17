package dev.lazypull.registry;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.image.Json;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;
import java.util.logging.Logger;
import okhttp3.FormBody;
import okhttp3.HttpUrl;
import okhttp3.Request;
import okhttp3.Response;

/**
 * Registry authentication: remembers per endpoint which scheme the registry challenged with, builds
 * the {@code Authorization} header up front for later requests (so a blob GET does not pay a 401
 * round trip), and answers 401 challenges.
 *
 * <ul>
 *   <li>Basic: the host's credentials, read from the {@link CredentialStore} on every use.
 *   <li>Bearer: a token from the challenge's realm for (realm, service, scopes): GET with {@code
 *       service} and one {@code scope} parameter per scope, with Basic credentials if there are any
 *       and none for anonymous pulls; an OAuth2 POST ({@code grant_type=refresh_token}) when the
 *       host has an identity token; a configured registry token is sent as-is. Tokens are cached
 *       and refreshed before they expire; a 401 with a cached token fetches a new one, once.
 * </ul>
 *
 * Concurrent requests needing the same token wait for one fetch instead of each asking the token
 * server. No header, token or credential ever appears in an exception message or a log line.
 */
final class RegistryAuth {
  private static final Logger LOG = Logger.getLogger(RegistryAuth.class.getName());
  private static final int MAX_TOKEN_RESPONSE = 1 << 20;
  static final String CLIENT_ID = "lazypull";

  /** Sends one token request (with the transport's retries for idempotent ones). */
  interface TokenHttp {
    Response execute(Request request, boolean idempotent) throws IOException;
  }

  private record Key(String realm, String service, Scope scope) {}

  private static final class HostState {
    volatile Challenge bearer;
    volatile boolean basic;
  }

  private final CredentialStore store;
  private final LongSupplier nanoClock;
  private TokenHttp http;
  private final Map<String, HostState> hosts = new ConcurrentHashMap<>();
  private final Map<Key, Token> tokens = new ConcurrentHashMap<>();
  private final Map<Key, Object> locks = new ConcurrentHashMap<>();

  RegistryAuth(CredentialStore store, LongSupplier nanoClock) {
    this.store = store;
    this.nanoClock = nanoClock;
  }

  void setHttp(TokenHttp http) {
    this.http = http;
  }

  private HostState state(Endpoint ep) {
    return hosts.computeIfAbsent(ep.base().toString(), k -> new HostState());
  }

  /**
   * The header to send before any challenge, from what this endpoint asked for last time; null if
   * none.
   */
  String preemptive(Endpoint ep, Scope scope) throws IOException {
    HostState s = state(ep);
    Challenge bearer = s.bearer;
    if (bearer != null) {
      return token(ep, bearer, scope, null).header();
    }
    if (s.basic) {
      Credentials c = store.lookup(ep.credentialKey());
      return c == null ? null : c.basicHeader();
    }
    return null;
  }

  /**
   * Handles a 401's challenges. Returns the header to retry with, or null when retrying cannot help
   * (no credentials, the same credentials were just refused, no supported scheme).
   */
  String answer(Endpoint ep, Scope scope, List<Challenge> challenges, String failedHeader)
      throws IOException {
    Challenge bearer = null;
    Challenge basic = null;
    for (Challenge c : challenges) {
      if (c.isBearer() && bearer == null) {
        bearer = c;
      } else if (c.isBasic() && basic == null) {
        basic = c;
      }
    }
    HostState s = state(ep);
    if (bearer != null) {
      if (bearer.param("realm") == null) {
        throw new RegistryException(ep + ": Bearer challenge without a realm");
      }
      s.bearer = bearer;
      Scope wanted = scope.plus(bearer.param("scope"));
      Token t = token(ep, bearer, wanted, failedHeader);
      String header = t.header();
      return header.equals(failedHeader) ? null : header;
    }
    if (basic != null) {
      s.basic = true;
      Credentials c = store.lookup(ep.credentialKey());
      String header = c == null ? null : c.basicHeader();
      return header == null || header.equals(failedHeader) ? null : header;
    }
    return null;
  }

  /**
   * Whether the endpoint's credentials exist, for error messages ("no credentials" vs "refused").
   */
  /** Where token fetches are counted (set by the transport that uses this). */
  volatile RegistryStats stats;

  boolean hasCredentials(Endpoint ep) {
    try {
      return store.lookup(ep.credentialKey()) != null;
    } catch (IOException e) {
      return false;
    }
  }

  /**
   * A usable token for the scope. {@code refused}, when set, is a header the registry just
   * rejected: a cached token equal to it is dropped and a fresh one fetched.
   */
  private Token token(Endpoint ep, Challenge bearer, Scope scope, String refused)
      throws IOException {
    Key key = new Key(bearer.param("realm"), Objects.toString(bearer.param("service"), ""), scope);
    Token t = tokens.get(key);
    long now = nanoClock.getAsLong();
    if (t != null && t.usable(now) && !t.header().equals(refused)) {
      return t;
    }
    synchronized (locks.computeIfAbsent(key, k -> new Object())) {
      t = tokens.get(key); // another thread may have refreshed it while we waited
      now = nanoClock.getAsLong();
      if (t != null && t.usable(now) && !t.header().equals(refused)) {
        return t;
      }
      tokens.remove(key);
      if (stats != null) {
        stats.tokenFetches.increment();
      }
      Token fresh = fetch(ep, key);
      tokens.put(key, fresh);
      return fresh;
    }
  }

  private Token fetch(Endpoint ep, Key key) throws IOException {
    HttpUrl realm = HttpUrl.parse(key.realm);
    if (realm == null) {
      throw new RegistryException(ep + ": Bearer realm is not an http(s) URL");
    }
    Credentials c = store.lookup(ep.credentialKey());
    if (c != null && c.registryToken() != null) {
      return Token.of(c.registryToken(), Long.MAX_VALUE / 2_000_000_000L, nanoClock.getAsLong());
    }
    Request req;
    boolean idempotent;
    if (c != null && c.identityToken() != null) {
      FormBody.Builder form =
          new FormBody.Builder()
              .add("grant_type", "refresh_token")
              .add("refresh_token", c.identityToken())
              .add("client_id", CLIENT_ID);
      if (!key.service.isEmpty()) {
        form.add("service", key.service);
      }
      if (!key.scope.items().isEmpty()) {
        form.add("scope", key.scope.toString());
      }
      req = new Request.Builder().url(realm).post(form.build()).build();
      idempotent = false;
    } else {
      HttpUrl.Builder u = realm.newBuilder();
      if (!key.service.isEmpty()) {
        u.addQueryParameter("service", key.service);
      }
      for (String s : key.scope.items()) {
        u.addQueryParameter("scope", s);
      }
      Request.Builder b = new Request.Builder().url(u.build()).get();
      String basic = c == null ? null : c.basicHeader();
      if (basic != null) {
        b.header("Authorization", basic);
      }
      req = b.build();
      idempotent = true;
    }
    String where =
        "token server "
            + realm.scheme()
            + "://"
            + realm.host()
            + ":"
            + realm.port()
            + realm.encodedPath()
            + " (for "
            + ep
            + ", scope '"
            + key.scope
            + "')";
    try (Response r = http.execute(req, idempotent)) {
      if (r.code() == 401 || r.code() == 403) {
        throw new RegistryException(
            where
                + " refused "
                + (c == null ? "an anonymous request" : "the credentials for " + ep.credentialKey())
                + ": HTTP "
                + r.code(),
            r.code(),
            null);
      }
      if (r.code() != 200) {
        throw new RegistryException(where + ": HTTP " + r.code(), r.code(), null);
      }
      byte[] body = Bodies.read(r, MAX_TOKEN_RESPONSE, where);
      JsonNode n;
      try {
        n = Json.MAPPER.readTree(body);
      } catch (IOException e) {
        throw new RegistryException(where + ": response is not JSON");
      }
      String token = n.path("token").asText("");
      if (token.isEmpty()) {
        token = n.path("access_token").asText("");
      }
      if (token.isEmpty()) {
        throw new RegistryException(where + ": response has no token");
      }
      long expiresIn = n.path("expires_in").canConvertToLong() ? n.path("expires_in").asLong() : 0;
      LOG.fine(
          () ->
              "got a token from "
                  + where
                  + ", expires in "
                  + (expiresIn > 0 ? expiresIn : 60)
                  + " s");
      return Token.of(token, expiresIn, nanoClock.getAsLong());
    }
  }
}

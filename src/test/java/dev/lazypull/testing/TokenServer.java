package dev.lazypull.testing;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.lazypull.image.Json;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A docker token server for {@code auth.token} registries (distribution's token spec): issues RS256
 * JWTs carrying the signing certificate in {@code x5c}, for users given with {@link #user} (Basic
 * credentials on the GET) and, if allowed, anonymous pulls. The key and self-signed certificate
 * come from {@code openssl}; point the registry's {@code rootcertbundle} at {@link #certificate()}.
 */
public final class TokenServer implements AutoCloseable {
  public static final String SERVICE = "test-registry";
  public static final String ISSUER = "test-issuer";

  private final HttpServer http;
  private final PrivateKey key;
  private final X509Certificate cert;
  private final Path certFile;
  private final Map<String, String> users = new ConcurrentHashMap<>();
  private volatile boolean anonymousPull;
  private volatile long expiresIn = 300;
  public final AtomicInteger tokensIssued = new AtomicInteger();
  public final AtomicInteger refused = new AtomicInteger();

  /** Starts on a free loopback port; key material goes into {@code dir}. */
  public static TokenServer start(Path dir) throws Exception {
    Requirements.requireTool("openssl");
    Files.createDirectories(dir);
    Path k = dir.resolve("token.key");
    Path c = dir.resolve("token.crt");
    Requirements.run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        k.toString(),
        "-out",
        c.toString(),
        "-days",
        "2",
        "-subj",
        "/CN=lazypull-test-token");
    return new TokenServer(k, c);
  }

  private TokenServer(Path keyFile, Path certFile) throws Exception {
    this.certFile = certFile;
    String pem =
        Files.readString(keyFile).replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
    this.key =
        KeyFactory.getInstance("RSA")
            .generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(pem)));
    try (InputStream in = Files.newInputStream(certFile)) {
      this.cert = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
    this.http = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
    http.createContext("/token", this::token);
    http.start();
  }

  public TokenServer user(String name, String password) {
    users.put(name, password);
    return this;
  }

  public TokenServer anonymousPull(boolean allowed) {
    this.anonymousPull = allowed;
    return this;
  }

  public TokenServer expiresIn(long seconds) {
    this.expiresIn = seconds;
    return this;
  }

  public String realm() {
    return "http://127.0.0.1:" + http.getAddress().getPort() + "/token";
  }

  public Path certificate() {
    return certFile;
  }

  private void token(HttpExchange ex) throws IOException {
    try (ex) {
      String subject = authenticate(ex.getRequestHeaders().getFirst("Authorization"));
      if (subject == null) {
        refused.incrementAndGet();
        ex.sendResponseHeaders(401, -1);
        return;
      }
      Map<String, List<String>> q = query(ex.getRequestURI().getRawQuery());
      ArrayNode access = Json.MAPPER.createArrayNode();
      for (String scope : q.getOrDefault("scope", List.of())) {
        String[] parts = scope.split(":");
        if (parts.length != 3 || !parts[0].equals("repository")) {
          continue;
        }
        ArrayNode actions = Json.MAPPER.createArrayNode();
        for (String a : parts[2].split(",")) {
          if (a.equals("pull") || !subject.isEmpty()) {
            actions.add(a); // anonymous: pull only; users: what they asked for
          }
        }
        access.addObject().put("type", "repository").put("name", parts[1]).set("actions", actions);
      }
      long now = System.currentTimeMillis() / 1000;
      ObjectNode claims =
          Json.MAPPER
              .createObjectNode()
              .put("iss", ISSUER)
              .put("sub", subject)
              .put("aud", SERVICE)
              .put("exp", now + expiresIn)
              .put("nbf", now - 10)
              .put("iat", now)
              .put("jti", UUID.randomUUID().toString());
      claims.set("access", access);
      ObjectNode header = Json.MAPPER.createObjectNode().put("typ", "JWT").put("alg", "RS256");
      header.putArray("x5c").add(Base64.getEncoder().encodeToString(cert.getEncoded()));
      String signingInput =
          b64url(Json.MAPPER.writeValueAsBytes(header))
              + "."
              + b64url(Json.MAPPER.writeValueAsBytes(claims));
      Signature s = Signature.getInstance("SHA256withRSA");
      s.initSign(key);
      s.update(signingInput.getBytes(StandardCharsets.US_ASCII));
      String jwt = signingInput + "." + b64url(s.sign());
      byte[] body =
          Json.MAPPER.writeValueAsBytes(
              Json.MAPPER
                  .createObjectNode()
                  .put("token", jwt)
                  .put("access_token", jwt)
                  .put("expires_in", expiresIn));
      tokensIssued.incrementAndGet();
      ex.getResponseHeaders().add("Content-Type", "application/json");
      ex.sendResponseHeaders(200, body.length);
      ex.getResponseBody().write(body);
    } catch (Exception e) {
      throw new IOException(e);
    }
  }

  /** "" for anonymous (if allowed), the user name, or null when refused. */
  private String authenticate(String authorization) {
    if (authorization == null) {
      return anonymousPull ? "" : null;
    }
    if (!authorization.startsWith("Basic ")) {
      return null;
    }
    String decoded =
        new String(
            Base64.getDecoder().decode(authorization.substring(6).trim()), StandardCharsets.UTF_8);
    int colon = decoded.indexOf(':');
    String user = decoded.substring(0, Math.max(colon, 0));
    return colon > 0 && decoded.substring(colon + 1).equals(users.get(user)) ? user : null;
  }

  private static Map<String, List<String>> query(String raw) {
    Map<String, List<String>> out = new ConcurrentHashMap<>();
    if (raw == null) {
      return out;
    }
    for (String kv : raw.split("&")) {
      int eq = kv.indexOf('=');
      String k = URLDecoder.decode(eq < 0 ? kv : kv.substring(0, eq), StandardCharsets.UTF_8);
      String v = eq < 0 ? "" : URLDecoder.decode(kv.substring(eq + 1), StandardCharsets.UTF_8);
      out.computeIfAbsent(k, x -> new ArrayList<>()).add(v);
    }
    return out;
  }

  private static String b64url(byte[] b) {
    return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
  }

  @Override
  public void close() {
    http.stop(0);
  }
}

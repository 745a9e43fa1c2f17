package dev.lazypull.registry;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.image.Json;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.logging.Logger;

/**
 * Credentials from a docker {@code config.json}: {@code credHelpers[host]}, else {@code
 * credsStore}, run as {@code docker-credential-<name> get}; else {@code auths[host]} ({@code auth}
 * = base64 user:password, {@code identitytoken}, {@code registrytoken}). The {@code
 * DOCKER_AUTH_CONFIG} environment variable, when set, is consulted before the file. Docker Hub's
 * key is {@code https://index.docker.io/v1/}; legacy keys with a scheme or path match by host.
 *
 * <p>The file is re-read whenever its modification time, size or inode changes, so {@code docker
 * login} while the daemon runs takes effect at the next token fetch. A missing file means anonymous
 * access. A malformed file is an error naming the file (never its contents).
 */
final class DockerConfigCredentials implements CredentialStore {
  private static final Logger LOG = Logger.getLogger(DockerConfigCredentials.class.getName());
  static final String DOCKER_HUB_KEY = "https://index.docker.io/v1/";
  private static final long MAX_BYTES = 1 << 20;

  private final Path file;
  private final String envConfig;
  private volatile Parsed envParsed;
  private final CredentialHelper helpers;
  private Parsed cached;
  private Object cachedKey;

  /**
   * @param file the config.json to read (see {@link #defaultPath})
   * @param envConfig the value of {@code DOCKER_AUTH_CONFIG}, or null
   */
  public DockerConfigCredentials(Path file, String envConfig, CredentialHelper helpers) {
    this.file = file;
    this.envConfig = envConfig;
    this.helpers = helpers;
  }

  /**
   * From the environment: {@code $DOCKER_CONFIG/config.json}, else {@code ~/.docker/config.json}.
   */
  public static DockerConfigCredentials fromEnvironment(Path override) {
    Path path =
        override != null ? override : defaultPath(System.getenv(), System.getProperty("user.home"));
    return new DockerConfigCredentials(
        path, System.getenv("DOCKER_AUTH_CONFIG"), new CredentialHelper());
  }

  public static Path defaultPath(Map<String, String> env, String home) {
    String dir = env.get("DOCKER_CONFIG");
    if (dir != null && !dir.isEmpty()) {
      return Path.of(dir, "config.json");
    }
    return Path.of(home == null ? "/root" : home, ".docker", "config.json");
  }

  public Path file() {
    return file;
  }

  @Override
  public Credentials lookup(String host) throws IOException {
    String key = normalize(host);
    if (envConfig != null && !envConfig.isBlank()) {
      Credentials c = envParsed().auth(key);
      if (c != null) {
        return c;
      }
    }
    Parsed p = current();
    if (p == null) {
      return null;
    }
    String helper = p.credHelpers.getOrDefault(key, p.credsStore);
    if (helper != null && !helper.isEmpty()) {
      Credentials c = helpers.get(helper, serverUrl(key));
      if (c != null) {
        return c;
      }
    }
    return p.auth(key);
  }

  /**
   * DOCKER_AUTH_CONFIG, parsed on first use (lookups run per request for Basic auth); a bad value
   * fails each.
   */
  private Parsed envParsed() throws IOException {
    Parsed p = envParsed;
    if (p == null) {
      p = parse(envConfig.getBytes(StandardCharsets.UTF_8), "DOCKER_AUTH_CONFIG");
      envParsed = p;
    }
    return p;
  }

  /** What a credential helper and config keys call a host: Docker Hub is its v1 index URL. */
  static String serverUrl(String normalizedHost) {
    return normalizedHost.equals("docker.io") ? DOCKER_HUB_KEY : normalizedHost;
  }

  /** Reduces a key or host to {@code host[:port]}, Docker Hub's aliases to {@code docker.io}. */
  static String normalize(String keyOrHost) {
    String s = keyOrHost.trim().toLowerCase(Locale.ROOT);
    int scheme = s.indexOf("://");
    if (scheme >= 0) {
      s = s.substring(scheme + 3);
    }
    int slash = s.indexOf('/');
    if (slash >= 0) {
      s = s.substring(0, slash);
    }
    if (s.equals("index.docker.io")
        || s.equals("registry-1.docker.io")
        || s.equals("registry.hub.docker.com")) {
      return "docker.io";
    }
    return s;
  }

  private synchronized Parsed current() throws IOException {
    BasicFileAttributes attrs;
    try {
      attrs = Files.readAttributes(file, BasicFileAttributes.class);
    } catch (NoSuchFileException e) {
      cached = null;
      cachedKey = null;
      return null;
    }
    Object key = List.of(attrs.lastModifiedTime(), attrs.size(), Objects.toString(attrs.fileKey()));
    if (cached != null && key.equals(cachedKey)) {
      return cached;
    }
    if (attrs.size() > MAX_BYTES) {
      throw new IOException(file + ": larger than " + MAX_BYTES + " bytes");
    }
    Parsed p = parse(Files.readAllBytes(file), file.toString());
    if (cached != null) {
      LOG.info("credentials file " + file + " changed; using the new contents");
    }
    cached = p;
    cachedKey = key;
    return p;
  }

  private static Parsed parse(byte[] bytes, String what) throws IOException {
    JsonNode root;
    try {
      root = Json.MAPPER.readTree(bytes);
    } catch (IOException e) {
      throw new IOException(what + ": not valid JSON (contents not shown: they may hold secrets)");
    }
    if (root == null || !root.isObject()) {
      throw new IOException(what + ": not a JSON object");
    }
    Map<String, JsonNode> auths = new HashMap<>();
    for (Map.Entry<String, JsonNode> e : root.path("auths").properties()) {
      auths.putIfAbsent(normalize(e.getKey()), e.getValue());
    }
    Map<String, String> credHelpers = new HashMap<>();
    for (Map.Entry<String, JsonNode> e : root.path("credHelpers").properties()) {
      if (e.getValue().isTextual()) {
        credHelpers.put(normalize(e.getKey()), e.getValue().asText());
      }
    }
    String store = root.path("credsStore").isTextual() ? root.path("credsStore").asText() : null;
    return new Parsed(auths, credHelpers, store, what);
  }

  private record Parsed(
      Map<String, JsonNode> auths,
      Map<String, String> credHelpers,
      String credsStore,
      String source) {
    Credentials auth(String key) throws IOException {
      JsonNode e = auths.get(key);
      if (e == null || !e.isObject()) {
        return null;
      }
      String user = text(e, "username");
      String pass = text(e, "password");
      String auth = text(e, "auth");
      if (auth != null && !auth.isEmpty()) {
        String decoded;
        try {
          decoded = new String(Base64.getDecoder().decode(auth.trim()), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException ex) {
          throw new IOException(source + ": auths[\"" + key + "\"].auth is not valid base64");
        }
        int colon = decoded.indexOf(':');
        if (colon <= 0) {
          throw new IOException(
              source + ": auths[\"" + key + "\"].auth is not base64 of user:password");
        }
        user = decoded.substring(0, colon);
        pass = stripTrailingNuls(decoded.substring(colon + 1));
      }
      String identity = text(e, "identitytoken");
      String registryToken = text(e, "registrytoken");
      if (user == null && identity == null && registryToken == null) {
        return null;
      }
      return new Credentials(user, pass, emptyToNull(identity), emptyToNull(registryToken));
    }

    private static String text(JsonNode n, String field) {
      JsonNode v = n.get(field);
      return v != null && v.isTextual() ? v.asText() : null;
    }

    private static String emptyToNull(String s) {
      return s == null || s.isEmpty() ? null : s;
    }

    private static String stripTrailingNuls(String s) {
      int end = s.length();
      while (end > 0 && s.charAt(end - 1) == '\0') {
        end--;
      }
      return s.substring(0, end);
    }
  }
}

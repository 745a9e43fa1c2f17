package dev.lazypull.registry;

import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigNode;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Settings of the registry client: the config file's {@code [registry]} table and its {@code
 * [[registry.host]]} entries (docs/config.md), with command-line overrides applied through the
 * {@code with…} methods.
 *
 * @param plainHttp talk plain HTTP to every registry (the {@code --plain-http} flag)
 * @param caFiles PEM files with extra trusted CA certificates (added to the system's)
 * @param platform {@code os/arch[/variant]} picked from image indexes
 * @param connectTimeout TCP+TLS connect timeout
 * @param readTimeout longest silence while reading a response
 * @param requestTimeout whole-call limit for manifests, tokens and ranged blob reads (not
 *     whole-blob transfers)
 * @param retry retries of idempotent requests
 * @param mirrorCooldown how long a failing mirror is skipped
 * @param dockerConfig docker config.json for credentials (null: {@code $DOCKER_CONFIG} or {@code
 *     ~/.docker})
 * @param maxSkip most bytes discarded when a registry ignores {@code Range} and sends the whole
 *     blob
 * @param redirectTtl how long a blob's redirect target is reused
 * @param chunkedUploadThreshold blobs at least this large are pushed in PATCH chunks
 * @param uploadChunkSize size of each PATCH chunk
 * @param maxConnections idle connections kept per client (the daemon sets it to its fetch threads)
 * @param hosts per-registry settings by registry name ({@code docker.io}, {@code localhost:5000})
 */
public record RegistryConfig(
    boolean plainHttp,
    List<Path> caFiles,
    String platform,
    Duration connectTimeout,
    Duration readTimeout,
    Duration requestTimeout,
    RetryPolicy retry,
    Duration mirrorCooldown,
    Path dockerConfig,
    long maxSkip,
    Duration redirectTtl,
    long chunkedUploadThreshold,
    long uploadChunkSize,
    int maxConnections,
    Map<String, Host> hosts) {

  static final String[] KEYS = {
    "plain_http",
    "ca_files",
    "platform",
    "connect_timeout",
    "read_timeout",
    "request_timeout",
    "retries",
    "retry_backoff",
    "retry_max_backoff",
    "max_retry_after",
    "mirror_cooldown",
    "docker_config",
    "max_skip",
    "redirect_ttl",
    "chunked_upload_threshold",
    "upload_chunk_size",
    "host"
  };
  static final String[] HOST_KEYS = {"name", "plain_http", "mirrors"};

  /**
   * Per-registry settings.
   *
   * @param name the registry as written in references ({@code docker.io}, {@code reg.example:5000})
   * @param mirrors pull endpoints tried in order before the origin ({@code http[s]://host[:port]})
   */
  public record Host(String name, boolean plainHttp, List<URI> mirrors) {
    public Host {
      mirrors = List.copyOf(mirrors);
    }
  }

  public RegistryConfig {
    caFiles = List.copyOf(caFiles);
    hosts = Map.copyOf(hosts);
    if (maxConnections < 1) {
      throw new IllegalArgumentException("max connections must be >= 1");
    }
    if (uploadChunkSize < 1) {
      throw new IllegalArgumentException("upload chunk size must be >= 1");
    }
  }

  public static RegistryConfig defaults() {
    return new RegistryConfig(
        false,
        List.of(),
        "linux/amd64",
        Duration.ofSeconds(10),
        Duration.ofSeconds(30),
        Duration.ofSeconds(120),
        new RetryPolicy(3, Duration.ofMillis(200), Duration.ofSeconds(5), Duration.ofSeconds(30)),
        Duration.ofSeconds(30),
        null,
        64L << 20,
        Duration.ofMinutes(5),
        64L << 20,
        16L << 20,
        16,
        Map.of());
  }

  /**
   * Reads the {@code [registry]} table (absent: defaults); unknown keys and bad values are refused.
   */
  public static RegistryConfig from(ConfigNode t) throws ConfigException {
    RegistryConfig d = defaults();
    t.allowOnly(KEYS);
    List<Path> cas = new ArrayList<>();
    for (String s : t.strings("ca_files")) {
      cas.add(Path.of(s));
    }
    String platform = t.string("platform", d.platform);
    try {
      Platform.parse(platform);
    } catch (IllegalArgumentException e) {
      throw new ConfigException("registry.platform: " + e.getMessage());
    }
    Duration base = t.duration("retry_backoff", d.retry.base());
    Duration max = t.duration("retry_max_backoff", d.retry.max());
    if (max.compareTo(base) < 0) {
      throw new ConfigException("registry.retry_max_backoff must be >= registry.retry_backoff");
    }
    RetryPolicy retry =
        new RetryPolicy(
            (int) t.integer("retries", d.retry.retries(), 0, 20),
            base,
            max,
            t.duration("max_retry_after", d.retry.maxRetryAfter()));
    String dockerConfig = t.string("docker_config", null);
    Map<String, Host> hosts = new LinkedHashMap<>();
    for (ConfigNode h : t.sections("host")) {
      h.allowOnly(HOST_KEYS);
      String name = h.string("name", null);
      if (name == null || name.isBlank()) {
        throw new ConfigException(
            "registry.host entries need a name (the registry as written in references)");
      }
      name = name.toLowerCase(Locale.ROOT);
      List<URI> mirrors = new ArrayList<>();
      for (String m : h.strings("mirrors")) {
        try {
          mirrors.add(parseMirror(m));
        } catch (IllegalArgumentException e) {
          throw new ConfigException(
              "registry.host " + name + ": mirror '" + m + "': " + e.getMessage());
        }
      }
      if (hosts.put(name, new Host(name, h.bool("plain_http", false), mirrors)) != null) {
        throw new ConfigException("registry.host " + name + " is listed twice");
      }
    }
    return new RegistryConfig(
        t.bool("plain_http", false),
        cas,
        platform,
        positive(t, "connect_timeout", d.connectTimeout),
        positive(t, "read_timeout", d.readTimeout),
        positive(t, "request_timeout", d.requestTimeout),
        retry,
        t.duration("mirror_cooldown", d.mirrorCooldown),
        dockerConfig == null ? null : Path.of(dockerConfig),
        t.size("max_skip", d.maxSkip, 0, 1L << 40),
        t.duration("redirect_ttl", d.redirectTtl),
        t.size("chunked_upload_threshold", d.chunkedUploadThreshold, 1, Long.MAX_VALUE),
        t.size("upload_chunk_size", d.uploadChunkSize, 64 << 10, 1L << 30),
        d.maxConnections,
        hosts);
  }

  private static Duration positive(ConfigNode t, String key, Duration def) throws ConfigException {
    Duration v = t.duration(key, def);
    if (v.isZero()) {
      throw new ConfigException("registry." + key + " must be positive");
    }
    return v;
  }

  /** A mirror endpoint: {@code http://} or {@code https://}, a host, an optional port, no path. */
  public static URI parseMirror(String text) {
    URI u;
    try {
      u = new URI(text.trim());
    } catch (URISyntaxException e) {
      throw new IllegalArgumentException("not a URL");
    }
    if (!"http".equals(u.getScheme()) && !"https".equals(u.getScheme())) {
      throw new IllegalArgumentException("must start with http:// or https://");
    }
    if (u.getHost() == null) {
      throw new IllegalArgumentException("has no host");
    }
    if (u.getRawPath() != null && !u.getRawPath().isEmpty() && !u.getRawPath().equals("/")) {
      throw new IllegalArgumentException("must not have a path (mirrors serve the same /v2/ API)");
    }
    if (u.getRawQuery() != null || u.getRawUserInfo() != null) {
      throw new IllegalArgumentException(
          "must not have a query or user info (credentials go in config.json)");
    }
    return URI.create(u.getScheme() + "://" + u.getRawAuthority());
  }

  public Host host(String registry) {
    Host h = hosts.get(registry.toLowerCase(Locale.ROOT));
    return h != null ? h : new Host(registry, false, List.of());
  }

  /** Whether {@code registry} is spoken to over plain HTTP. */
  public boolean isPlainHttp(String registry) {
    return plainHttp || host(registry).plainHttp();
  }

  public RegistryConfig withPlainHttp(boolean all) {
    return new RegistryConfig(
        all || plainHttp,
        caFiles,
        platform,
        connectTimeout,
        readTimeout,
        requestTimeout,
        retry,
        mirrorCooldown,
        dockerConfig,
        maxSkip,
        redirectTtl,
        chunkedUploadThreshold,
        uploadChunkSize,
        maxConnections,
        hosts);
  }

  public RegistryConfig withPlatform(String p) {
    Platform.parse(p);
    return new RegistryConfig(
        plainHttp,
        caFiles,
        p,
        connectTimeout,
        readTimeout,
        requestTimeout,
        retry,
        mirrorCooldown,
        dockerConfig,
        maxSkip,
        redirectTtl,
        chunkedUploadThreshold,
        uploadChunkSize,
        maxConnections,
        hosts);
  }

  public RegistryConfig withMaxConnections(int n) {
    return new RegistryConfig(
        plainHttp,
        caFiles,
        platform,
        connectTimeout,
        readTimeout,
        requestTimeout,
        retry,
        mirrorCooldown,
        dockerConfig,
        maxSkip,
        redirectTtl,
        chunkedUploadThreshold,
        uploadChunkSize,
        n,
        hosts);
  }

  public RegistryConfig withRetry(RetryPolicy r) {
    return new RegistryConfig(
        plainHttp,
        caFiles,
        platform,
        connectTimeout,
        readTimeout,
        requestTimeout,
        r,
        mirrorCooldown,
        dockerConfig,
        maxSkip,
        redirectTtl,
        chunkedUploadThreshold,
        uploadChunkSize,
        maxConnections,
        hosts);
  }

  public RegistryConfig withHost(Host h) {
    Map<String, Host> m = new LinkedHashMap<>(hosts);
    m.put(h.name().toLowerCase(Locale.ROOT), h);
    return new RegistryConfig(
        plainHttp,
        caFiles,
        platform,
        connectTimeout,
        readTimeout,
        requestTimeout,
        retry,
        mirrorCooldown,
        dockerConfig,
        maxSkip,
        redirectTtl,
        chunkedUploadThreshold,
        uploadChunkSize,
        maxConnections,
        m);
  }

  public RegistryConfig withUploads(long threshold, long chunkSize) {
    return new RegistryConfig(
        plainHttp,
        caFiles,
        platform,
        connectTimeout,
        readTimeout,
        requestTimeout,
        retry,
        mirrorCooldown,
        dockerConfig,
        maxSkip,
        redirectTtl,
        threshold,
        chunkSize,
        maxConnections,
        hosts);
  }

  public RegistryConfig withTimeouts(Duration connect, Duration read, Duration request) {
    return new RegistryConfig(
        plainHttp,
        caFiles,
        platform,
        connect,
        read,
        request,
        retry,
        mirrorCooldown,
        dockerConfig,
        maxSkip,
        redirectTtl,
        chunkedUploadThreshold,
        uploadChunkSize,
        maxConnections,
        hosts);
  }

  public RegistryConfig withMaxSkip(long n) {
    return new RegistryConfig(
        plainHttp,
        caFiles,
        platform,
        connectTimeout,
        readTimeout,
        requestTimeout,
        retry,
        mirrorCooldown,
        dockerConfig,
        n,
        redirectTtl,
        chunkedUploadThreshold,
        uploadChunkSize,
        maxConnections,
        hosts);
  }

  public RegistryConfig withCaFiles(List<Path> files) {
    return new RegistryConfig(
        plainHttp,
        files,
        platform,
        connectTimeout,
        readTimeout,
        requestTimeout,
        retry,
        mirrorCooldown,
        dockerConfig,
        maxSkip,
        redirectTtl,
        chunkedUploadThreshold,
        uploadChunkSize,
        maxConnections,
        hosts);
  }

  public RegistryConfig withDockerConfig(Path p) {
    return new RegistryConfig(
        plainHttp,
        caFiles,
        platform,
        connectTimeout,
        readTimeout,
        requestTimeout,
        retry,
        mirrorCooldown,
        p,
        maxSkip,
        redirectTtl,
        chunkedUploadThreshold,
        uploadChunkSize,
        maxConnections,
        hosts);
  }
}

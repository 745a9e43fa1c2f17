package dev.lazypull.testing;

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Debian's {@code docker-registry} (distribution 2.8.2) on 127.0.0.1 and a free port, with a config
 * this fixture writes: no auth, htpasswd Basic, token auth against a {@link TokenServer}, and/or
 * pull-through proxy mode in front of another registry. Storage, config and log live in the given
 * directory; the access log (one combined-format line per request) tells what was served. Stop it
 * with {@link #close}.
 *
 * <pre>{@code
 * try (DockerRegistryFixture reg = DockerRegistryFixture.builder(dir).basicAuth("user", "pass").start()) {
 *   String image = reg.host() + "/team/app:v1";   // talk to it with --plain-http
 * }
 * }</pre>
 */
public final class DockerRegistryFixture implements AutoCloseable {
  private static final Pattern ACCESS =
      Pattern.compile("\"(GET|HEAD|PUT|POST|PATCH|DELETE) (\\S+) HTTP/[0-9.]+\" (\\d{3}) (\\d+|-)");

  private final Process process;
  private final int port;
  private final Path dir;
  private final Path log;

  /** How to start one. */
  public static final class Builder {
    private final Path dir;
    private String basicUser;
    private String basicPassword;
    private TokenServer tokens;
    private DockerRegistryFixture upstream;
    private String upstreamUser;
    private String upstreamPassword;
    private Path storage;

    private Builder(Path dir) {
      this.dir = dir;
    }

    /** htpasswd (bcrypt) Basic auth with one user. */
    public Builder basicAuth(String user, String password) {
      this.basicUser = user;
      this.basicPassword = password;
      return this;
    }

    /** Token auth: the registry trusts JWTs from {@code server}. */
    public Builder tokenAuth(TokenServer server) {
      this.tokens = server;
      return this;
    }

    /**
     * Pull-through cache of {@code origin} (read-only), with credentials for it if it needs them.
     */
    public Builder proxyOf(DockerRegistryFixture origin, String user, String password) {
      this.upstream = origin;
      this.upstreamUser = user;
      this.upstreamPassword = password;
      return this;
    }

    /** Storage root (default: {@code DIR/storage}); may hold a registry tree prepared elsewhere. */
    public Builder storage(Path root) {
      this.storage = root;
      return this;
    }

    public DockerRegistryFixture start() throws IOException, InterruptedException {
      Requirements.requireTool("docker-registry");
      Files.createDirectories(dir);
      Path root = storage != null ? storage : dir.resolve("storage");
      Files.createDirectories(root);
      int port = freePort();
      StringBuilder yml = new StringBuilder();
      yml.append("version: 0.1\n")
          .append("log:\n  level: info\n  accesslog:\n    disabled: false\n")
          .append("storage:\n  filesystem:\n    rootdirectory: ")
          .append(root.toAbsolutePath())
          .append('\n')
          .append("  delete:\n    enabled: true\n")
          .append("http:\n  addr: 127.0.0.1:")
          .append(port)
          .append('\n');
      if (basicUser != null) {
        Requirements.requireTool("htpasswd");
        Path htpasswd = dir.resolve("htpasswd");
        Files.writeString(
            htpasswd, Requirements.run("htpasswd", "-Bbn", basicUser, basicPassword).trim() + "\n");
        yml.append("auth:\n  htpasswd:\n    realm: lazypull-test\n    path: ")
            .append(htpasswd.toAbsolutePath())
            .append('\n');
      } else if (tokens != null) {
        yml.append("auth:\n  token:\n    realm: ")
            .append(tokens.realm())
            .append('\n')
            .append("    service: ")
            .append(TokenServer.SERVICE)
            .append('\n')
            .append("    issuer: ")
            .append(TokenServer.ISSUER)
            .append('\n')
            .append("    rootcertbundle: ")
            .append(tokens.certificate().toAbsolutePath())
            .append('\n');
      }
      if (upstream != null) {
        yml.append("proxy:\n  remoteurl: ").append(upstream.url()).append('\n');
        if (upstreamUser != null) {
          yml.append("  username: ")
              .append(upstreamUser)
              .append("\n  password: ")
              .append(upstreamPassword)
              .append('\n');
        }
      }
      Path config = dir.resolve("config.yml");
      Files.writeString(config, yml.toString());
      Path log = dir.resolve("registry.log");
      Process p =
          new ProcessBuilder("docker-registry", "serve", config.toString())
              .redirectErrorStream(true)
              .redirectOutput(log.toFile())
              .start();
      DockerRegistryFixture f = new DockerRegistryFixture(p, port, dir, log);
      f.awaitUp();
      return f;
    }
  }

  public static Builder builder(Path dir) {
    return new Builder(dir);
  }

  private DockerRegistryFixture(Process process, int port, Path dir, Path log) {
    this.process = process;
    this.port = port;
    this.dir = dir;
    this.log = log;
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  private void awaitUp() throws IOException, InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new AssertionError(
            "docker-registry exited " + process.exitValue() + ":\n" + logText());
      }
      try {
        HttpURLConnection c =
            (HttpURLConnection) URI.create(url() + "/v2/").toURL().openConnection();
        c.setConnectTimeout(500);
        c.setReadTimeout(2000);
        int code = c.getResponseCode();
        c.disconnect();
        if (code == 200 || code == 401) {
          return;
        }
      } catch (IOException e) {
        // not listening yet
      }
      Thread.sleep(50);
    }
    close();
    throw new AssertionError("docker-registry did not come up on port " + port + ":\n" + logText());
  }

  /** {@code 127.0.0.1:PORT}: the registry part of image references (use plain HTTP). */
  public String host() {
    return "127.0.0.1:" + port;
  }

  public String url() {
    return "http://" + host();
  }

  public Path dir() {
    return dir;
  }

  public String logText() {
    try {
      return Files.readString(log, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "(no log: " + e.getMessage() + ")";
    }
  }

  /** One access-log line: method, request URI, status, body bytes written. */
  public record Access(String method, String uri, int status, long bytes) {}

  public List<Access> accessLog() {
    return logText()
        .lines()
        .map(ACCESS::matcher)
        .filter(Matcher::find)
        .map(
            m ->
                new Access(
                    m.group(1),
                    m.group(2),
                    Integer.parseInt(m.group(3)),
                    m.group(4).equals("-") ? 0 : Long.parseLong(m.group(4))))
        .toList();
  }

  /** Body bytes this registry sent for successful blob GETs (200/206). */
  public long blobBytesServed() {
    return accessLog().stream()
        .filter(
            a ->
                a.method.equals("GET")
                    && a.uri.contains("/blobs/sha256:")
                    && (a.status == 200 || a.status == 206))
        .mapToLong(Access::bytes)
        .sum();
  }

  public boolean isRunning() {
    return process.isAlive();
  }

  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }
}

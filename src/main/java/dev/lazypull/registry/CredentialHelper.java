package dev.lazypull.registry;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.image.Json;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * Runs docker credential helpers: {@code docker-credential-<name> get} with the server URL on
 * stdin, JSON {@code {"ServerURL","Username","Secret"}} on stdout. "credentials not found" means
 * anonymous. A username of {@code <token>} marks the secret as an identity (refresh) token. Answers
 * are cached briefly so a Basic-auth registry does not fork a helper per request; the helper's
 * stdout never appears in an error.
 */
final class CredentialHelper {
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
  private static final int MAX_OUTPUT = 64 << 10;
  private static final Duration TIMEOUT = Duration.ofSeconds(10);
  private static final long CACHE_NANOS = TimeUnit.SECONDS.toNanos(30);

  private final List<Path> searchPath;
  private final Map<String, Cached> cache = new ConcurrentHashMap<>();

  private record Cached(Credentials credentials, long at) {}

  /** Helpers found on {@code $PATH}. */
  public CredentialHelper() {
    this(pathDirs());
  }

  public CredentialHelper(List<Path> searchPath) {
    this.searchPath = List.copyOf(searchPath);
  }

  private static List<Path> pathDirs() {
    String path = System.getenv().getOrDefault("PATH", "/usr/local/bin:/usr/bin:/bin");
    return Arrays.stream(path.split(":")).filter(s -> !s.isEmpty()).map(Path::of).toList();
  }

  /** Credentials the helper has for {@code serverUrl}, or null if it has none. */
  public Credentials get(String name, String serverUrl) throws IOException {
    String key = name + "\0" + serverUrl;
    Cached c = cache.get(key);
    if (c != null && System.nanoTime() - c.at < CACHE_NANOS) {
      return c.credentials;
    }
    Credentials fresh = run(name, serverUrl);
    cache.put(key, new Cached(fresh, System.nanoTime()));
    return fresh;
  }

  private Credentials run(String name, String serverUrl) throws IOException {
    if (!NAME.matcher(name).matches()) {
      throw new IOException("invalid credential helper name '" + name + "'");
    }
    String program = "docker-credential-" + name;
    Path exe =
        searchPath.stream()
            .map(d -> d.resolve(program))
            .filter(Files::isExecutable)
            .findFirst()
            .orElseThrow(
                () -> new IOException("credential helper " + program + " not found on PATH"));
    Process p =
        new ProcessBuilder(exe.toString(), "get")
            .redirectError(ProcessBuilder.Redirect.PIPE)
            .start();
    try {
      try (OutputStream in = p.getOutputStream()) {
        in.write(serverUrl.getBytes(StandardCharsets.UTF_8));
      }
      // Both pipes are drained concurrently, so a chatty or hung helper can neither deadlock nor
      // stall us.
      CompletableFuture<byte[]> outF =
          CompletableFuture.supplyAsync(() -> readBounded(p.getInputStream()));
      CompletableFuture<byte[]> errF =
          CompletableFuture.supplyAsync(() -> readBounded(p.getErrorStream()));
      if (!p.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new IOException(program + " get did not finish within " + TIMEOUT.toSeconds() + " s");
      }
      byte[] out = outF.join();
      byte[] err = errF.join();
      String outText = new String(out, StandardCharsets.UTF_8).trim();
      String errText = new String(err, StandardCharsets.UTF_8).trim();
      if (p.exitValue() != 0) {
        if (outText.contains("credentials not found")
            || errText.contains("credentials not found")) {
          return null;
        }
        String first = errText.lines().findFirst().orElse("");
        throw new IOException(
            program
                + " get exited "
                + p.exitValue()
                + (first.isEmpty()
                    ? ""
                    : ": " + first.substring(0, Math.min(200, first.length()))));
      }
      JsonNode n;
      try {
        n = Json.MAPPER.readTree(out);
      } catch (IOException e) {
        throw new IOException(
            program + " get printed something that is not JSON (not shown: it may hold secrets)");
      }
      String user = n.path("Username").asText("");
      String secret = n.path("Secret").asText("");
      if (secret.isEmpty()) {
        return null;
      }
      if (user.equals("<token>")) {
        return new Credentials(null, null, secret, null);
      }
      return Credentials.basic(user, secret);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(program + " get interrupted");
    } finally {
      p.destroyForcibly();
    }
  }

  private static byte[] readBounded(InputStream in) {
    try (in) {
      byte[] b = in.readNBytes(MAX_OUTPUT);
      in.transferTo(
          OutputStream.nullOutputStream()); // drain so the helper never blocks on a full pipe
      return b;
    } catch (IOException e) {
      return new byte[0];
    }
  }
}

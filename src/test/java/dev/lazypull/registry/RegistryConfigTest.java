package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigFile;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RegistryConfigTest {
  @TempDir Path tmp;

  private RegistryConfig parse(String toml) throws Exception {
    Path f = tmp.resolve("c.toml");
    Files.writeString(f, toml);
    return RegistryConfig.from(ConfigFile.load(f, true).section("registry"));
  }

  @Test
  void readsEveryKeyAndHostEntries() throws Exception {
    RegistryConfig c =
        parse(
            """
        [registry]
        platform = "linux/arm64"
        ca_files = ["/etc/ssl/extra.pem"]
        connect_timeout = "3s"
        read_timeout = "20s"
        request_timeout = "1m"
        retries = 5
        retry_backoff = "100ms"
        retry_max_backoff = "2s"
        max_retry_after = "10s"
        mirror_cooldown = "1m"
        docker_config = "/srv/docker/config.json"
        max_skip = "8M"
        redirect_ttl = "30s"
        chunked_upload_threshold = "32M"
        upload_chunk_size = "8M"

        [[registry.host]]
        name = "docker.io"
        mirrors = ["http://127.0.0.1:5001", "https://mirror.example:8443/"]

        [[registry.host]]
        name = "Localhost:5000"
        plain_http = true
        """);
    assertEquals("linux/arm64", c.platform());
    assertEquals(List.of(Path.of("/etc/ssl/extra.pem")), c.caFiles());
    assertEquals(Duration.ofSeconds(3), c.connectTimeout());
    assertEquals(Duration.ofMinutes(1), c.requestTimeout());
    assertEquals(5, c.retry().retries());
    assertEquals(Duration.ofSeconds(10), c.retry().maxRetryAfter());
    assertEquals(8 << 20, c.maxSkip());
    assertEquals(Path.of("/srv/docker/config.json"), c.dockerConfig());
    assertEquals(
        List.of(URI.create("http://127.0.0.1:5001"), URI.create("https://mirror.example:8443")),
        c.host("docker.io").mirrors());
    assertTrue(c.isPlainHttp("localhost:5000"));
    assertFalse(c.isPlainHttp("docker.io"));
    assertTrue(c.withPlainHttp(true).isPlainHttp("docker.io"));
  }

  @Test
  void absentTableMeansDefaults() throws Exception {
    RegistryConfig c = parse("[daemon]\nthreads = 2\n");
    assertEquals(RegistryConfig.defaults(), c);
  }

  @Test
  void unknownKeysAndBadValuesAreRefusedByName() {
    assertMessage("[registry]\nplain-http = true\n", "registry.plain-http");
    assertMessage("[registry]\nplatform = \"amd64\"\n", "registry.platform");
    assertMessage("[registry]\nretries = 99\n", "registry.retries");
    assertMessage("[registry]\nconnect_timeout = \"0s\"\n", "connect_timeout");
    assertMessage(
        "[registry]\nretry_backoff = \"5s\"\nretry_max_backoff = \"1s\"\n", "retry_max_backoff");
    assertMessage("[[registry.host]]\nmirrors = []\n", "name");
    assertMessage("[[registry.host]]\nname = \"a\"\nmirror = []\n", "registry.host[0].mirror");
    assertMessage("[[registry.host]]\nname = \"a\"\nmirrors = [\"ftp://x\"]\n", "http");
    assertMessage("[[registry.host]]\nname = \"a\"\nmirrors = [\"https://x/prefix\"]\n", "path");
    assertMessage("[[registry.host]]\nname = \"a\"\nmirrors = [\"https://u:p@x\"]\n", "user info");
    assertMessage("[[registry.host]]\nname = \"a\"\n[[registry.host]]\nname = \"A\"\n", "twice");
  }

  private void assertMessage(String toml, String part) {
    ConfigException e = assertThrows(ConfigException.class, () -> parse(toml));
    assertTrue(e.getMessage().contains(part), e.getMessage());
  }
}

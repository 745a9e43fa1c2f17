package dev.lazypull.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.cli.Main;
import dev.lazypull.image.Json;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.image.PullOptions;
import dev.lazypull.prefetch.PrefetchConfig;
import dev.lazypull.prefetch.PrefetchPolicy;
import dev.lazypull.registry.CredentialStore;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import dev.lazypull.registry.RetryPolicy;
import dev.lazypull.testing.DaemonHarness;
import dev.lazypull.testing.FakeKernel;
import dev.lazypull.testing.FakeRegistry;
import dev.lazypull.testing.TestTrees;
import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import mockwebserver3.MockWebServer;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Per-image registry settings through the control API: {@code register} with {@code "pull":
 * {"plainHttp": true}} makes the daemon's one registry client speak plain HTTP to that image's
 * registry, the setting is kept in the catalog record and shown by {@code list} and {@code status},
 * and a restarted daemon (a fresh client, nothing configured) still reads the image over plain
 * HTTP. The registry is a plain-HTTP server reached under a name that is not a loopback name, so
 * only the per-image setting can make it work.
 */
class PerImageRegistryTest {
  /**
   * Not a loopback name (so no automatic fallback); resolved to the test server by the client's own
   * DNS.
   */
  private static final String NAME = "registry.lazypull.test";

  @StartStop public final MockWebServer server = new MockWebServer();
  @TempDir Path tmp;
  private final FakeRegistry reg = new FakeRegistry();
  private DaemonHarness harness;
  private RegistryClient client;
  private String ref;

  @BeforeEach
  void pushImage() throws Exception {
    server.setDispatcher(reg);
    Path tree = Files.createDirectories(tmp.resolve("tree"));
    TestTrees.write(tree.resolve("data.bin"), 300_000, new Random(5));
    Path layout = tmp.resolve("layout");
    assertEquals(0, Main.run("pack", tree.toString(), "--output", "oci:" + layout + ":v1"));
    try (Stream<Path> blobs = Files.list(layout.resolve("blobs/sha256"))) {
      for (Path b : blobs.toList()) {
        reg.putBlob("acc/app", Files.readAllBytes(b));
      }
    }
    String manifest =
        Json.MAPPER
            .readTree(layout.resolve("index.json").toFile())
            .path("manifests")
            .get(0)
            .path("digest")
            .asText();
    reg.putManifest(
        "acc/app",
        "v1",
        Files.readAllBytes(layout.resolve("blobs/sha256/" + manifest.substring(7))),
        MediaTypes.OCI_MANIFEST);
    ref = NAME + ":" + server.getPort() + "/acc/app:v1";
  }

  @AfterEach
  void stop() {
    if (harness != null) {
      harness.close();
    }
    if (client != null) {
      client.close();
    }
  }

  /**
   * A daemon over a fresh client: defaults (TLS everywhere), quick retries, {@link #NAME} →
   * 127.0.0.1.
   */
  private DaemonApi startDaemon() throws IOException {
    client =
        new RegistryClient(
            RegistryConfig.defaults()
                .withRetry(
                    new RetryPolicy(
                        1, Duration.ofMillis(1), Duration.ofMillis(1), Duration.ofSeconds(1)))
                .withTimeouts(
                    Duration.ofSeconds(2), Duration.ofSeconds(30), Duration.ofSeconds(60)),
            CredentialStore.anonymous(),
            d -> {},
            host -> {
              if (host.equals(NAME)) {
                return List.of(InetAddress.getLoopbackAddress());
              }
              throw new UnknownHostException(host);
            });
    harness =
        DaemonHarness.in(tmp)
            .registry(client)
            .config(c -> c.prefetch(new PrefetchConfig(PrefetchPolicy.NONE, 1, 0, Duration.ZERO)))
            .start();
    return new DaemonApi(harness.daemon);
  }

  private void restart() {
    harness.close();
    harness = null;
    client.close();
    client = null;
  }

  private static ObjectNode register(String image, ObjectNode pull) {
    ObjectNode req = Json.MAPPER.createObjectNode().put("image", image);
    if (pull != null) {
      req.set("pull", pull);
    }
    return req;
  }

  private static ObjectNode pull(boolean plainHttp, String platform) {
    ObjectNode p = Json.MAPPER.createObjectNode().put("plainHttp", plainHttp);
    return platform == null ? p : p.put("platform", platform);
  }

  @Test
  void plainHttpAskedForAtRegistrationIsHonouredPersistedShownAndKeptAcrossARestart()
      throws Exception {
    DaemonApi api = startDaemon();
    // without the flag the daemon speaks TLS to a non-loopback name, and this registry has none
    Exception tls =
        assertThrows(IOException.class, () -> api.handle("register", register(ref, null)));
    assertTrue(tls.getMessage().contains("https://" + NAME), tls.getMessage());
    assertTrue(harness.catalog().list().isEmpty());

    JsonNode reply = api.handle("register", register(ref, pull(true, "linux/arm64")));
    assertTrue(reply.path("image").path("pull").path("plainHttp").asBoolean(), reply.toString());
    assertEquals("linux/arm64", reply.path("image").path("pull").path("platform").asText());
    String fsid = reply.path("image").path("fsid").asText();
    assertTrue(client.isPlainHttp(NAME + ":" + server.getPort()));
    assertEquals(
        new PullOptions(true, "linux/arm64"), harness.catalog().get(fsid).orElseThrow().pull());

    JsonNode listed = api.handle("list", Json.MAPPER.createObjectNode()).path("images").get(0);
    assertTrue(listed.path("pull").path("plainHttp").asBoolean(), listed.toString());
    JsonNode status =
        api.handle("status", Json.MAPPER.createObjectNode()).path("registered").get(0);
    assertEquals(fsid, status.path("fsid").asText());
    assertTrue(status.path("pull").path("plainHttp").asBoolean(), status.toString());
    assertEquals("linux/arm64", status.path("pull").path("platform").asText());

    // the same image again without flags keeps its settings
    api.handle("register", register(ref, null));
    assertEquals(
        new PullOptions(true, "linux/arm64"), harness.catalog().get(fsid).orElseThrow().pull());

    // a restart: new process state, a client that was never told anything; the kernel asks for the
    // bootstrap
    restart();
    DaemonApi again = startDaemon();
    ImageRecord r = harness.catalog().get(fsid).orElseThrow();
    assertTrue(r.pullOptions().plainHttp());
    int before = reg.requestsTo("/blobs/" + r.bootstrap().digest()).size();
    FakeKernel.FakeObject boot = harness.kernel.open("erofs," + fsid, fsid);
    assertEquals(r.bootstrap().size(), boot.copen.get(10, TimeUnit.SECONDS));
    assertEquals(
        FakeKernel.Outcome.DATA, harness.kernel.read(boot, 0, 4096).get(10, TimeUnit.SECONDS));
    assertTrue(
        reg.requestsTo("/blobs/" + r.bootstrap().digest()).size() > before,
        "read from the registry");
    assertTrue(client.isPlainHttp(NAME + ":" + server.getPort()));
    assertTrue(
        again
            .handle("list", Json.MAPPER.createObjectNode())
            .path("images")
            .get(0)
            .path("pull")
            .path("plainHttp")
            .asBoolean());
  }

  @Test
  void badPullSettingsAreRefusedBeforeAnyRegistryTraffic() throws Exception {
    DaemonApi api = startDaemon();
    ObjectNode badPlatform = register(ref, pull(true, "linux"));
    assertThrows(IllegalArgumentException.class, () -> api.handle("register", badPlatform));
    ObjectNode notBool = register(ref, Json.MAPPER.createObjectNode().put("plainHttp", "yes"));
    assertThrows(IllegalArgumentException.class, () -> api.handle("register", notBool));
    assertTrue(reg.requests.isEmpty(), reg.requests.toString());
    assertFalse(client.isPlainHttp(NAME + ":" + server.getPort()));
  }

  @Test
  void prefetchThroughTheDaemonAddsPlainHttpToTheImageAndChecksItsPlatform() throws Exception {
    DaemonApi api = startDaemon();
    // a loopback name needs no flag (probed); the image is registered without settings of its own
    String loop = "127.0.0.1:" + server.getPort() + "/acc/app:v1";
    String fsid = api.handle("register", register(loop, null)).path("image").path("fsid").asText();
    assertNull(harness.catalog().get(fsid).orElseThrow().pull());

    ObjectNode wrongPlatform = register(fsid, pull(false, "linux/arm64"));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> api.handle("prefetch", wrongPlatform));
    assertTrue(e.getMessage().contains("default platform"), e.getMessage());

    // not mounted, so the prefetch itself is refused — but the image's settings were updated and
    // persisted
    ObjectNode plain = register(fsid, pull(true, null));
    IllegalArgumentException notMounted =
        assertThrows(IllegalArgumentException.class, () -> api.handle("prefetch", plain));
    assertTrue(notMounted.getMessage().contains("not mounted"), notMounted.getMessage());
    assertEquals(new PullOptions(true, null), harness.catalog().get(fsid).orElseThrow().pull());
    restart();
    startDaemon();
    assertEquals(new PullOptions(true, null), harness.catalog().get(fsid).orElseThrow().pull());
  }
}

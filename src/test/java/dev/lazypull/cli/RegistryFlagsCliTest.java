package dev.lazypull.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.control.ControlServer;
import dev.lazypull.image.Json;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.testing.CliRun;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.FakeRegistry;
import dev.lazypull.testing.RegistryImages;
import dev.lazypull.testing.TestTrees;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Stream;
import mockwebserver3.MockWebServer;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The registry flags of commands that name an image: {@code mount} and {@code prefetch} send {@code
 * --plain-http} and {@code --platform} to the daemon in their control request (checked against a
 * stand-in control server), {@code status} shows what each image was registered with, {@code nbd}
 * takes {@code --platform}, and {@code inspect} reads a plain-HTTP registry on 127.0.0.1 with no
 * flag and no configuration.
 */
class RegistryFlagsCliTest {
  @TempDir Path tmp;
  @StartStop public final MockWebServer server = new MockWebServer();
  private final List<JsonNode> requests = new CopyOnWriteArrayList<>();
  private ControlServer control;

  @AfterEach
  void stop() throws Exception {
    if (control != null) {
      control.close();
    }
  }

  /**
   * A control server that records requests and answers {@code status} with one registered image.
   */
  private Path fakeDaemon() throws Exception {
    Path socket = tmp.resolve("ctl.sock");
    control =
        ControlServer.start(
            socket,
            (op, req) -> {
              requests.add(((ObjectNode) req.deepCopy()).put("op", op));
              if (op.equals("status")) {
                ObjectNode out =
                    Json.MAPPER.createObjectNode().put("frontend", "fanotify").put("images", 2);
                ArrayNode reg = out.putArray("registered");
                reg.addObject()
                    .put("fsid", "lp-aaa")
                    .put("reference", "127.0.0.1:5000/acc/app:v1")
                    .putObject("pull")
                    .put("plainHttp", true)
                    .put("platform", "linux/arm64");
                reg.addObject()
                    .put("fsid", "lp-bbb")
                    .put("reference", "docker.io/library/alpine:latest");
                return out;
              }
              throw new IllegalArgumentException("stand-in daemon: " + op + " refused on purpose");
            });
    return socket;
  }

  private JsonNode only(String op) {
    List<JsonNode> of = requests.stream().filter(r -> r.path("op").asText().equals(op)).toList();
    assertEquals(1, of.size(), requests.toString());
    return of.get(0);
  }

  @Test
  void mountSendsPlainHttpAndPlatformWithTheRegisterRequest() throws Exception {
    Path socket = fakeDaemon();
    Path mnt = Files.createDirectories(tmp.resolve("mnt"));
    CliRun.Result r =
        CliRun.run(
            "mount",
            "--socket",
            socket.toString(),
            "--plain-http",
            "--platform",
            "linux/arm64",
            "127.0.0.1:5000/acc/app:v1",
            mnt.toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().contains("refused on purpose"), r.err());
    JsonNode reg = only("register");
    assertEquals("127.0.0.1:5000/acc/app:v1", reg.path("image").asText());
    assertTrue(reg.path("pull").path("plainHttp").asBoolean(), reg.toString());
    assertEquals("linux/arm64", reg.path("pull").path("platform").asText(), reg.toString());

    requests.clear();
    CliRun.run("mount", "--socket", socket.toString(), "127.0.0.1:5000/acc/app:v1", mnt.toString());
    assertFalse(only("register").has("pull"), "no flags, nothing sent: " + requests);

    requests.clear();
    CliRun.Result bad =
        CliRun.run(
            "mount",
            "--socket",
            socket.toString(),
            "--platform",
            "linux",
            "127.0.0.1:5000/acc/app:v1",
            mnt.toString());
    assertEquals(2, bad.code(), bad.err());
    assertTrue(bad.err().contains("--platform"), bad.err());
    assertEquals(List.of(), requests, "a malformed platform is refused before the daemon is asked");
  }

  @Test
  void prefetchThroughTheDaemonSendsTheFlagsToo() throws Exception {
    Path socket = fakeDaemon();
    CliRun.Result r =
        CliRun.run(
            "prefetch",
            "--socket",
            socket.toString(),
            "--plain-http",
            "--platform",
            "linux/amd64",
            "127.0.0.1:5000/acc/app:v1");
    assertEquals(1, r.code(), r.err());
    JsonNode p = only("prefetch");
    assertTrue(p.path("pull").path("plainHttp").asBoolean(), p.toString());
    assertEquals("linux/amd64", p.path("pull").path("platform").asText());
  }

  @Test
  void statusShowsEachImagesRegistrySettings() throws Exception {
    Path socket = fakeDaemon();
    CliRun.Result r = CliRun.run("status", "--socket", socket.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(
        r.out().contains("lp-aaa")
            && r.out()
                .contains("127.0.0.1:5000/acc/app:v1 (plain-http, platform " + "linux/arm64)"),
        r.out());
    String alpine = r.out().lines().filter(l -> l.contains("lp-bbb")).findFirst().orElseThrow();
    assertTrue(alpine.trim().endsWith("docker.io/library/alpine:latest"), alpine);
  }

  @Test
  void nbdTakesPlatform() throws Exception {
    Path toml = RegistryImages.config(tmp.resolve("cfg"), null);
    CliRun.Result r =
        CliRun.run(
            "nbd", "--config", toml.toString(), "--platform", "linux", "127.0.0.1:5000/acc/app:v1");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("--platform: ") && r.err().contains("linux"), r.err());
  }

  @Test
  void inspectReadsAPlainHttpRegistryOnLoopbackWithoutFlagOrConfig() throws Exception {
    FakeRegistry reg = new FakeRegistry();
    server.setDispatcher(reg);
    Path tree = Files.createDirectories(tmp.resolve("tree"));
    TestTrees.write(tree.resolve("f.bin"), 50_000, new Random(9));
    Path layout = tmp.resolve("layout");
    assertEquals(
        0, CliRun.run("pack", tree.toString(), "--output", "oci:" + layout + ":v1").code());
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
    // an empty docker config and a short connect timeout (which bounds the loopback probe): no
    // plain_http
    Path toml = RegistryImages.config(tmp.resolve("cfg"), "connect_timeout = \"2s\"\n");
    // the loopback probe tries TLS first: the plain-HTTP mock server reports that handshake as a
    // crashed connection
    ExpectedLogs.allowSevere("connection from /127.0.0.1 crashed");
    CliRun.Result r =
        CliRun.run(
            "inspect",
            "--config",
            toml.toString(),
            "127.0.0.1:" + server.getPort() + "/acc/app:v1");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains(manifest), r.out());
  }
}

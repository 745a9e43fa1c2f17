package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.cli.Main;
import dev.lazypull.config.ConfigFile;
import dev.lazypull.erofs.Superblock;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.LazyImage;
import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.oci.OciLayout;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.LazypullProcess;
import dev.lazypull.testing.NbdTestClient;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.TokenServer;
import dev.lazypull.testing.VmHarness;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Base64;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Against Debian's real {@code docker-registry}: push with {@code lazypull copy}, resolve, read
 * ranges and compare bytes — with no auth, htpasswd Basic, token auth (RS256 JWT with x5c from our
 * token server), and through a real pull-through proxy registry as a mirror, with fallback to the
 * origin when it dies.
 */
@Tag("registry")
class RegistryIT {
  @TempDir static Path work;
  static Path layout;
  static LazyImage local;
  static OciLayout localSource;

  @BeforeAll
  static void image() throws Exception {
    Requirements.requireTool("docker-registry");
    Requirements.requireTool("mkfs.erofs");
    Path tree = TestTrees.mixed(work.resolve("tree"), 7);
    Path boot = work.resolve("img.erofs");
    Path blob = work.resolve("img.blob");
    Requirements.run(
        "mkfs.erofs",
        "--quiet",
        "-T0",
        "--chunksize=1048576",
        "--blobdev=" + blob,
        boot.toString(),
        tree.toString());
    layout = work.resolve("layout");
    assertEquals(
        0,
        Main.run("import", boot.toString(), blob.toString(), "--output", "oci:" + layout + ":v1"));
    localSource = new OciLayout(layout, "v1");
    local = localSource.resolve();
  }

  private static Path config(Path dir, String dockerConfigJson, String extra) throws IOException {
    Files.createDirectories(dir);
    Path docker = dir.resolve("docker-config.json");
    Files.writeString(docker, dockerConfigJson == null ? "{}" : dockerConfigJson);
    Path toml = dir.resolve("lazypull.toml");
    Files.writeString(
        toml, "[registry]\ndocker_config = \"" + docker + "\"\n" + (extra == null ? "" : extra));
    return toml;
  }

  private static String auths(String host, String user, String pass) {
    return "{\"auths\":{\""
        + host
        + "\":{\"auth\":\""
        + Base64.getEncoder().encodeToString((user + ":" + pass).getBytes(StandardCharsets.UTF_8))
        + "\"}}}";
  }

  /** Runs the CLI in-process; returns exit code and output. */
  private static String[] cli(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    PrintStream old = System.out;
    PrintStream oldErr = System.err;
    int rc;
    try (PrintStream ps = new PrintStream(out, true, StandardCharsets.UTF_8)) {
      System.setOut(ps);
      System.setErr(ps);
      rc = Main.run(args);
    } finally {
      System.setOut(old);
      System.setErr(oldErr);
    }
    String text = out.toString(StandardCharsets.UTF_8);
    System.out.println("$ lazypull " + String.join(" ", args) + "\n" + text);
    return new String[] {Integer.toString(rc), text};
  }

  private static RegistryClient client(Path toml) throws Exception {
    RegistryConfig c =
        RegistryConfig.from(ConfigFile.load(toml, true).section("registry")).withPlainHttp(true);
    return RegistryClient.create(c);
  }

  /** Resolves the pushed image and compares ranges of every blob with the local layout's bytes. */
  private static void assertRangesMatch(RegistryClient client, String ref) throws Exception {
    RegistryImageSource src =
        new RegistryImageSource(client, (ImageReference.Registry) ImageReference.parse(ref));
    LazyImage img = src.resolve();
    assertEquals(local.manifestDigest(), img.manifestDigest());
    for (Descriptor d : img.allBlobs()) {
      byte[] all = Files.readAllBytes(layout.resolve("blobs/sha256/" + d.digest().hex()));
      long[][] ranges = {
        {0, Math.min(4096, d.size())},
        {d.size() / 3, Math.min(1 << 20, d.size() - d.size() / 3)},
        {d.size() - 1, 1},
        {0, d.size()}
      };
      for (long[] r : ranges) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ReadableByteChannel ch = src.blobs().openRange(d, r[0], r[1])) {
          Channels.newInputStream(ch).transferTo(out);
        }
        assertArrayEquals(
            Arrays.copyOfRange(all, (int) r[0], (int) (r[0] + r[1])),
            out.toByteArray(),
            d.digest() + " " + r[0] + "+" + r[1]);
      }
    }
  }

  @Test
  void plainRegistryPushInspectRangesMountAndCopyBack() throws Exception {
    try (DockerRegistryFixture reg = DockerRegistryFixture.builder(work.resolve("plain")).start()) {
      Path toml = config(work.resolve("plain-cfg"), null, null);
      String ref = reg.host() + "/team/app:v1";
      String[] r =
          cli("copy", "--plain-http", "--config", toml.toString(), "oci:" + layout + ":v1", ref);
      assertEquals("0", r[0], r[1]);
      assertTrue(r[1].contains("uploaded"), r[1]);
      r = cli("inspect", "--plain-http", "--config", toml.toString(), ref);
      assertEquals("0", r[0], r[1]);
      assertTrue(r[1].contains(local.manifestDigest().toString()), r[1]);
      assertRangesMatch(client(toml), ref);

      // within one registry, blobs are mounted rather than uploaded
      r =
          cli(
              "copy",
              "--plain-http",
              "--config",
              toml.toString(),
              ref,
              reg.host() + "/other/app:v2");
      assertEquals("0", r[0], r[1]);
      assertTrue(r[1].contains("mounted") && !r[1].contains("uploaded"), r[1]);
      // a second copy finds everything present
      r = cli("copy", "--plain-http", "--config", toml.toString(), "oci:" + layout + ":v1", ref);
      assertTrue(r[1].contains("copied 0 blobs"), r[1]);

      // and back into a fresh layout: same manifest digest, verified blobs
      Path back = work.resolve("back");
      r =
          cli(
              "copy",
              "--plain-http",
              "--config",
              toml.toString(),
              reg.host() + "/other/app:v2",
              "oci:" + back + ":v1");
      assertEquals("0", r[0], r[1]);
      assertEquals(local.manifestDigest(), new OciLayout(back, "v1").resolve().manifestDigest());
      for (Descriptor d : local.allBlobs()) {
        assertArrayEquals(
            Files.readAllBytes(layout.resolve("blobs/sha256/" + d.digest().hex())),
            Files.readAllBytes(back.resolve("blobs/sha256/" + d.digest().hex())));
      }
      assertTrue(reg.blobBytesServed() > 0);
    }
  }

  /**
   * docker's convention: a registry on 127.0.0.1 needs neither --plain-http nor plain_http. copy (a
   * push), inspect and nbd each find out on their own that it speaks plain HTTP, and read the right
   * bytes.
   */
  @Test
  void aLoopbackRegistryNeedsNoFlagAndNoConfiguration() throws Exception {
    Path jar = VmHarness.jar();
    try (DockerRegistryFixture reg =
        DockerRegistryFixture.builder(work.resolve("loopback")).start()) {
      Path toml =
          config(work.resolve("loopback-cfg"), null, null); // a docker config and nothing else
      assertTrue(!Files.readString(toml).contains("plain_http"));
      String ref = reg.host() + "/acc/app:v1";
      String[] r = cli("copy", "--config", toml.toString(), "oci:" + layout + ":v1", ref);
      assertEquals("0", r[0], r[1]);
      assertTrue(r[1].contains("uploaded"), r[1]);
      r = cli("inspect", "--config", toml.toString(), ref);
      assertEquals("0", r[0], r[1]);
      assertTrue(r[1].contains(local.manifestDigest().toString()), r[1]);
      r = cli("inspect", ref); // literally no configuration and no flag
      assertEquals("0", r[0], r[1]);
      assertTrue(r[1].contains(local.manifestDigest().toString()), r[1]);
      assertRangesMatch(
          RegistryClient.create(
              RegistryConfig.from(ConfigFile.load(toml, true).section("registry"))),
          ref);

      Path socket = work.resolve("loopback-nbd.sock");
      long served = reg.blobBytesServed();
      Map<String, Long> stats;
      try (LazypullProcess p =
          LazypullProcess.start(
              jar,
              work.resolve("loopback-nbd"),
              "nbd",
              ref,
              "--config",
              toml.toString(),
              "--listen",
              "unix:" + socket,
              "--cache-dir",
              work.resolve("loopback-cache").toString())) {
        p.awaitLine("serving", 60);
        try (NbdTestClient c = NbdTestClient.connect(socket)) {
          long size = c.exportName("", true).size();
          assertTrue(size > local.bootstrap().size(), "export of " + size + " bytes");
          c.request(Nbd.CMD_READ, 0, 1, 0, 4096);
          NbdTestClient.SimpleReply reply = c.simpleReply(4096);
          assertEquals(0, reply.error());
          ByteBuffer sb = ByteBuffer.wrap(reply.data()).order(ByteOrder.LITTLE_ENDIAN);
          assertEquals(
              Superblock.MAGIC,
              sb.getInt(Superblock.OFFSET),
              "the flattened device starts with the image's EROFS superblock");
          c.request(Nbd.CMD_READ, 0, 2, size - 4096, 4096);
          assertEquals(
              0,
              c.simpleReply(4096).error(),
              "a read of the data device: fetched from the registry");
        }
        stats = p.stop();
      }
      assertEquals(0, stats.get("readsFailed"), stats.toString());
      assertTrue(
          reg.blobBytesServed() > served,
          "the export read blobs from the registry over plain HTTP");
    }
  }

  @Test
  void htpasswdBasicAuth() throws Exception {
    try (DockerRegistryFixture reg =
        DockerRegistryFixture.builder(work.resolve("basic"))
            .basicAuth("alice", "wonder-land")
            .start()) {
      String ref = reg.host() + "/team/app:v1";
      Path good =
          config(work.resolve("basic-good"), auths(reg.host(), "alice", "wonder-land"), null);
      Path bad =
          config(work.resolve("basic-bad"), auths(reg.host(), "alice", "looking-glass"), null);
      Path none = config(work.resolve("basic-none"), null, null);

      String[] r =
          cli("copy", "--plain-http", "--config", none.toString(), "oci:" + layout + ":v1", ref);
      assertEquals("1", r[0]);
      assertTrue(r[1].contains("401") && r[1].contains("no credentials for " + reg.host()), r[1]);
      r = cli("copy", "--plain-http", "--config", bad.toString(), "oci:" + layout + ":v1", ref);
      assertEquals("1", r[0]);
      assertTrue(r[1].contains("not accepted") && !r[1].contains("looking-glass"), r[1]);
      r = cli("copy", "--plain-http", "--config", good.toString(), "oci:" + layout + ":v1", ref);
      assertEquals("0", r[0], r[1]);
      assertRangesMatch(client(good), ref);
      IOException e = assertThrows(IOException.class, () -> assertRangesMatch(client(none), ref));
      assertTrue(e.getMessage().contains("401"), e.getMessage());
    }
  }

  @Test
  void tokenAuthWithJwtFromOurTokenServer() throws Exception {
    try (TokenServer tokens =
            TokenServer.start(work.resolve("token-keys"))
                .user("bob", "builder")
                .anonymousPull(true);
        DockerRegistryFixture reg =
            DockerRegistryFixture.builder(work.resolve("token")).tokenAuth(tokens).start()) {
      String ref = reg.host() + "/team/app:v1";
      Path bob = config(work.resolve("token-bob"), auths(reg.host(), "bob", "builder"), null);
      Path anon = config(work.resolve("token-anon"), null, null);
      String[] r =
          cli("copy", "--plain-http", "--config", anon.toString(), "oci:" + layout + ":v1", ref);
      assertEquals("1", r[0], "anonymous tokens carry pull only: the push is refused");
      r = cli("copy", "--plain-http", "--config", bob.toString(), "oci:" + layout + ":v1", ref);
      assertEquals("0", r[0], r[1]);
      int issued = tokens.tokensIssued.get();
      assertRangesMatch(client(anon), ref);
      assertRangesMatch(client(bob), ref);
      assertTrue(
          tokens.tokensIssued.get() - issued <= 4,
          "tokens are cached: " + (tokens.tokensIssued.get() - issued));
    }
  }

  /**
   * distribution's proxy mode can only log in to token-auth upstreams (its credential store is
   * keyed by the token realm), so the origin here uses token auth.
   */
  @Test
  void aPullThroughProxyRegistryServesAsMirrorWithFallbackToTheOrigin() throws Exception {
    try (TokenServer tokens =
            TokenServer.start(work.resolve("origin-keys")).user("carol", "origin-pass");
        DockerRegistryFixture origin =
            DockerRegistryFixture.builder(work.resolve("origin")).tokenAuth(tokens).start()) {
      Path creds =
          config(work.resolve("origin-cfg"), auths(origin.host(), "carol", "origin-pass"), null);
      String ref = origin.host() + "/team/app:v1";
      assertEquals(
          "0",
          cli("copy", "--plain-http", "--config", creds.toString(), "oci:" + layout + ":v1", ref)[
              0]);
      DockerRegistryFixture mirror =
          DockerRegistryFixture.builder(work.resolve("mirror"))
              .proxyOf(origin, "carol", "origin-pass")
              .start();
      try {
        Path viaMirror =
            config(
                work.resolve("mirror-cfg"),
                auths(origin.host(), "carol", "origin-pass"),
                "[[registry.host]]\nname = \""
                    + origin.host()
                    + "\"\nmirrors = [\""
                    + mirror.url()
                    + "\"]\n");
        RegistryClient c = client(viaMirror);
        long originBefore = origin.blobBytesServed();
        assertRangesMatch(c, ref);
        long mirrored = mirror.blobBytesServed();
        assertTrue(mirrored > 0, "the mirror served the blobs:\n" + mirror.logText());
        long originDuring = origin.blobBytesServed() - originBefore;
        System.out.printf(
            "mirror served %d blob bytes (statuses %s); origin served %d (the proxy filling its cache)%n",
            mirrored,
            mirror.accessLog().stream()
                .filter(a -> a.uri().contains("/blobs/"))
                .map(a -> a.status())
                .toList(),
            originDuring);

        // the mirror dies: reads fall back to the origin and keep returning the right bytes
        mirror.close();
        long originBeforeFallback = origin.blobBytesServed();
        assertRangesMatch(c, ref);
        assertTrue(
            origin.blobBytesServed() > originBeforeFallback,
            "the origin served after the mirror died");
      } finally {
        mirror.close();
      }
    }
  }
}

package dev.lazypull.prefetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageRegistrar;
import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.registry.RawManifest;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import dev.lazypull.registry.RegistryImageSource;
import dev.lazypull.registry.Repository;
import dev.lazypull.testing.Await;
import dev.lazypull.testing.CliRun;
import dev.lazypull.testing.DaemonHarness;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.FakeKernel;
import dev.lazypull.testing.RegistryImages;
import dev.lazypull.testing.TestTrees;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.channels.Channels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Access profiles as OCI artifacts next to their image, against Debian's real {@code
 * docker-registry}: {@code lazypull profile push/pull} round-trips a profile under the tag {@code
 * sha256-<hex>.lazypull-profile}; the daemon (over the fake devnode) fetches it when the image is
 * registered without a local profile and replays it as soon as the image's objects open, before any
 * READ; registration never waits for or fails on a missing or malformed artifact.
 */
class ProfileArtifactIT {
  @TempDir static Path work;
  static DockerRegistryFixture reg;
  static Path toml;
  static RegistryClient client;
  static String ref;
  static LazyImage img;

  @TempDir Path tmp;
  private DaemonHarness harness;
  private FakeKernel kernel;

  @BeforeAll
  static void start() throws Exception {
    reg = DockerRegistryFixture.builder(work.resolve("registry")).start();
    toml = RegistryImages.config(work, null);
    client =
        RegistryClient.create(
            RegistryConfig.defaults()
                .withPlainHttp(true)
                .withDockerConfig(work.resolve("docker.json")));
    ref = reg.host() + "/prof/app:v1";
    img =
        RegistryImages
            .packAndPush( // raw chunks: the test compares the cache file with the blob as stored
                TestTrees.mixed(work.resolve("tree"), 41),
                ref,
                toml,
                work.resolve("scratch"),
                "--compression",
                "none");
  }

  @AfterAll
  static void stop() {
    if (client != null) {
      client.close();
    }
    if (reg != null) {
      reg.close();
    }
  }

  @AfterEach
  void stopDaemon() {
    if (harness != null) {
      harness.close();
    }
  }

  private static void await(BooleanSupplier c, String what) throws InterruptedException {
    Await.until(c::getAsBoolean, what);
  }

  private static AccessProfile profile() {
    Descriptor blob = img.blobs().get(0);
    return new AccessProfile(
        1,
        img.manifestDigest().toString(),
        1500,
        List.of(
            new AccessProfile.Range(blob.digest().toString(), 2L << 20, 1L << 20),
            new AccessProfile.Range(img.bootstrap().digest().toString(), 0, 4096)));
  }

  private static String[] registryFlags(String... args) {
    List<String> all = new ArrayList<>(List.of(args));
    all.addAll(List.of("--plain-http", "--config", toml.toString()));
    return all.toArray(String[]::new);
  }

  /** A daemon over the fake devnode, registry-backed, prefetch policy "profile", no recording. */
  private ImageRegistrar daemon(Path state) throws Exception {
    harness =
        DaemonHarness.in(tmp)
            .registry(client)
            .config(
                c ->
                    c.stateDir(state)
                        .fetch(
                            new FetchSettings(
                                4,
                                1 << 20,
                                4 << 20,
                                FetchSettings.DEFAULT_READ_AHEAD,
                                Duration.ofSeconds(10),
                                1 << 20))
                        .prefetch(new PrefetchConfig(PrefetchPolicy.PROFILE, 2, 0, Duration.ZERO)))
            .start();
    kernel = harness.kernel;
    return harness.daemon.registrar();
  }

  @Test
  void pushedProfilesArePulledByTheCliAndByTheDaemonWhichReplaysThemBeforeAnyRead()
      throws Exception {
    Path srcState = tmp.resolve("src-state");
    profile().save(srcState);
    CliRun.Result push =
        CliRun.run(registryFlags("profile", "push", ref, "--state-dir", srcState.toString()));
    assertEquals(0, push.code(), push.err());
    Repository repo = new Repository(reg.host(), "prof/app");
    String tag = ProfileArtifacts.tag(img.manifestDigest());
    assertEquals("sha256-" + img.manifestDigest().hex() + ".lazypull-profile", tag);
    RawManifest art = client.fetchManifest(repo, tag, null);
    Manifest m = Json.parse(art.bytes(), Manifest.class, "artifact");
    assertEquals(ProfileArtifacts.ARTIFACT_TYPE, m.artifactType());
    assertEquals(MediaTypes.OCI_EMPTY, m.config().mediaType());
    assertTrue(
        new String(art.bytes()).contains("\"subject\"")
            && new String(art.bytes()).contains(img.manifestDigest().toString()),
        "names the image as its subject");

    Path pulled = tmp.resolve("pulled.json");
    CliRun.Result pull =
        CliRun.run(registryFlags("profile", "pull", ref, "--file", pulled.toString()));
    assertEquals(0, pull.code(), pull.err());
    assertArrayEquals(Json.write(profile()), Files.readAllBytes(pulled));

    // The daemon: register → the profile arrives in the state dir without anyone asking.
    Path state = tmp.resolve("state");
    ImageRecord r = daemon(state).register(ref, "app", null, false);
    Path local = AccessProfile.path(state, img.manifestDigest());
    await(() -> Files.exists(local), "profile fetched on registration");
    assertEquals(profile(), AccessProfile.load(state, img.manifestDigest()).orElseThrow());

    // Mount: the data blob's object opens and the profile's range is fetched with no READ at all.
    Descriptor blob = img.blobs().get(0);
    FakeKernel.FakeObject d = kernel.open("erofs," + r.fsid(), blob.digest().hex());
    d.copen.get(5, TimeUnit.SECONDS);
    byte[] want = new byte[1 << 20];
    try (var ch =
        new RegistryImageSource(client, (ImageReference.Registry) ImageReference.parse(ref))
            .blobs()
            .openRange(blob, 2L << 20, 1L << 20)) {
      Channels.newInputStream(ch).readNBytes(want, 0, want.length);
    }
    await(
        () -> {
          try (RandomAccessFile f = new RandomAccessFile(d.file.toFile(), "r")) {
            if (f.length() < (3L << 20)) {
              return false;
            }
            byte[] got = new byte[want.length];
            f.seek(2L << 20);
            f.readFully(got);
            return Arrays.equals(want, got);
          } catch (IOException e) {
            return false;
          }
        },
        "the profile's range prefetched into the object's cache file");
    assertEquals(0, kernel.readCompletes.get(), "no READ was needed");
  }

  @Test
  void registrationNeverWaitsForOrFailsOnAMissingOrMalformedProfile() throws Exception {
    // Same image in a repository with no profile, and in one whose profile tag holds something
    // else.
    String none = reg.host() + "/prof/none:v1";
    String bogus = reg.host() + "/prof/bogus:v1";
    assertEquals(0, CliRun.run(registryFlags("copy", ref, none)).code());
    assertEquals(0, CliRun.run(registryFlags("copy", ref, bogus)).code());
    String tag = ProfileArtifacts.tag(img.manifestDigest());
    assertEquals(
        0, CliRun.run(registryFlags("copy", ref, reg.host() + "/prof/bogus:" + tag)).code());

    Path state = tmp.resolve("state");
    ImageRegistrar registrar = daemon(state);
    ExpectedLogs.Expectation refused = ExpectedLogs.warning("fetching the access profile of bogus");
    registrar.register(none, "none", null, false);
    registrar.register(bogus, "bogus", null, false);
    await(
        () ->
            reg.accessLog().stream()
                    .filter(
                        a ->
                            a.uri().contains("/manifests/" + tag)
                                && (a.uri().contains("/prof/none/")
                                    || a.uri().contains("/prof/bogus/")))
                    .count()
                >= 2,
        "both profile tags looked up");
    // The bogus artifact is refused with a warning once it has been checked; profiles are fetched
    // on one
    // thread in registration order, so the look-up for "none" (a 404) has finished by then too.
    await(() -> refused.seen() > 0, "the bogus profile refused");
    assertFalse(Files.exists(AccessProfile.path(state, img.manifestDigest())), "nothing saved");
    assertEquals(2, Catalog.load(state).list().size(), "both registered");
  }
}

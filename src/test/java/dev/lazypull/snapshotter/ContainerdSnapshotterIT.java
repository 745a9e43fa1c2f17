package dev.lazypull.snapshotter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.containerd.api.snapshots.PrepareSnapshotRequest;
import dev.lazypull.control.ControlClient;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.sys.MountInfo;
import dev.lazypull.sys.Mounts;
import dev.lazypull.testing.Await;
import dev.lazypull.testing.CliRun;
import dev.lazypull.testing.ContainerdFixture;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.RegistryImages;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestImages;
import dev.lazypull.testing.TestTrees;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * lazypull's snapshotter under a real containerd (Debian's 1.6, private config and sockets) and
 * runc, with the daemon's fanotify front end on this host's kernel and Debian's docker-registry on
 * loopback: {@code lazypull pull} then {@code ctr run --snapshotter lazypull} of a packed image,
 * the ordinary-image fallback, containerd's snapshot contract through {@code ctr snapshots}, clear
 * errors, restarts and release. All directories are on the test's temporary directory (ext4 here,
 * not tmpfs); every process and mount is ended in {@link #stopAll}.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ContainerdSnapshotterIT {
  private static final int BIG_FILES = 8;
  private static final int BIG_FILE_BYTES = 16 << 20;

  @TempDir static Path tmp;
  private static DockerRegistryFixture registry;
  private static ContainerdFixture containerd;
  private static JarProcess daemon;
  private static JarProcess snapshotterProcess;
  private static Path jar;
  private static Path toml;
  private static Path daemonSocket;
  private static Path snapSocket;
  private static Path snapRoot;
  private static String image;
  private static String plainImage;
  private static LazyImage lazyImage;
  private static Path tree;
  private static int daemonStarts;
  private static int snapshotterStarts;

  @BeforeAll
  static void startAll() throws Exception {
    Requirements.requireRoot();
    Requirements.requireTool("busybox");
    jar = Path.of(System.getProperty("lazypull.jar", "target/lazypull.jar"));
    Requirements.require(Files.isRegularFile(jar), "the packaged jar " + jar + " (mvn package)");
    try {
      registry = DockerRegistryFixture.builder(tmp.resolve("registry")).start();
      toml = RegistryImages.config(tmp.resolve("config"), null);
      tree = busyboxTree(tmp.resolve("tree"), true);
      image = registry.host() + "/lazy/app:v1";
      lazyImage = RegistryImages.packAndPush(tree, image, toml, tmp);
      plainImage = registry.host() + "/plain/app:v1";
      pushPlainImage();
      daemonSocket = tmp.resolve("run/lazypull.sock");
      snapSocket = tmp.resolve("run/snapshotter.sock");
      snapRoot = tmp.resolve("snapshotter");
      startDaemon();
      startSnapshotter();
      containerd =
          ContainerdFixture.start(tmp.resolve("containerd"), Map.of("lazypull", snapSocket));
    } catch (Throwable t) {
      stopAll();
      throw t;
    }
  }

  /**
   * busybox and its applets, a small file and (with {@code big}) 8 files of 16 MiB of random bytes.
   */
  static Path busyboxTree(Path root, boolean big) throws IOException {
    Files.createDirectories(root.resolve("bin"));
    Files.createDirectories(root.resolve("data"));
    Files.createDirectories(root.resolve("tmp"));
    Files.copy(Requirements.which("busybox"), root.resolve("bin/busybox"));
    for (String applet :
        List.of("sh", "md5sum", "cat", "ls", "echo", "sleep", "wc", "head", "dd")) {
      Files.createSymbolicLink(root.resolve("bin").resolve(applet), Path.of("busybox"));
    }
    Files.writeString(root.resolve("data/small"), "hello\n");
    if (big) {
      Random rnd = new Random(16);
      for (int i = 1; i <= BIG_FILES; i++) {
        TestTrees.write(root.resolve("data/big" + i), BIG_FILE_BYTES, rnd);
      }
    }
    return root;
  }

  /** An ordinary image (one tar layer: busybox and a greeting) in the registry. */
  private static void pushPlainImage() throws Exception {
    Path plain = busyboxTree(tmp.resolve("plain-tree"), false);
    Files.writeString(plain.resolve("data/greeting"), "unpacked the ordinary way\n");
    Path layout = tmp.resolve("plain-layout");
    TestImages.Layer layer = TestImages.tarOf(plain, tmp.resolve("plain-layer.tar.gz"), "gzip");
    TestImages.write(layout, "v1", List.of(layer));
    CliRun.Result r =
        CliRun.run(
            "copy",
            "oci:" + layout + ":v1",
            plainImage,
            "--plain-http",
            "--config",
            toml.toString());
    assertEquals(0, r.code(), r.err());
  }

  private static void startDaemon() throws Exception {
    daemon =
        JarProcess.start(
            jar,
            tmp.resolve("daemon-" + ++daemonStarts),
            "daemon",
            "--frontend",
            "fanotify",
            "--cache-dir",
            Files.createDirectories(tmp.resolve("cache")).toString(),
            "--state-dir",
            tmp.resolve("state").toString(),
            "--socket",
            daemonSocket.toString(),
            "--plain-http",
            "--config",
            toml.toString(),
            "--readahead",
            "4M");
    Await.until(
        () -> {
          if (!daemon.isAlive()) {
            throw new AssertionError("the daemon exited\n" + daemon.output());
          }
          try {
            new ControlClient(daemonSocket).call(ControlClient.request("ping"));
            return true;
          } catch (IOException e) {
            return false;
          }
        },
        Duration.ofSeconds(60),
        "the daemon answers on " + daemonSocket);
  }

  private static void startSnapshotter() throws Exception {
    snapshotterProcess =
        JarProcess.start(
            jar,
            tmp.resolve("snapshotter-" + ++snapshotterStarts),
            "snapshotter",
            "--address",
            snapSocket.toString(),
            "--root",
            snapRoot.toString(),
            "--socket",
            daemonSocket.toString(),
            "--plain-http",
            "--config",
            toml.toString(),
            "--remount-interval",
            "1s");
    snapshotterProcess.awaitLine("lazypull snapshotter: serving", 60);
  }

  @AfterAll
  static void stopAll() {
    if (containerd != null) {
      for (String ns : List.of("lazy", "plain", "contract", "errors", "restart", "alias")) {
        containerd.removeContainers(ns);
      }
      containerd.close();
    }
    if (snapshotterProcess != null) {
      snapshotterProcess.close();
    }
    unmountUnder(
        tmp); // the snapshotter leaves its lazy mounts for running containers; the test ends them
    if (daemon != null) {
      daemon.terminate(); // a clean stop ends the fd keeper too
    }
    endKeeper();
    if (registry != null) {
      registry.close();
    }
  }

  /**
   * The fanotify group's keeper, left when a test failed between a daemon's crash and its restart.
   */
  private static void endKeeper() {
    try {
      Path record = tmp.resolve("run/keeper-fanotify");
      if (Files.exists(record)) {
        long pid = Long.parseLong(Files.readString(record).trim().split(" ")[0]);
        ProcessHandle.of(pid)
            .filter(h -> h.info().commandLine().orElse("").contains("FdKeeper"))
            .ifPresent(ProcessHandle::destroy);
      }
    } catch (IOException | RuntimeException e) {
      System.err.println("ending the fd keeper: " + e);
    }
  }

  private static void unmountUnder(Path dir) {
    try {
      List<MountInfo.Mount> all = MountInfo.read();
      for (int i = all.size() - 1; i >= 0; i--) {
        if (all.get(i).mountPoint().startsWith(dir.toString())) {
          try {
            Mounts.umount(all.get(i).mountPoint(), Mounts.MNT_DETACH);
          } catch (IOException e) {
            System.err.println("umount " + all.get(i).mountPoint() + ": " + e.getMessage());
          }
        }
      }
    } catch (IOException e) {
      System.err.println("reading mounts: " + e.getMessage());
    }
  }

  // ---- helpers
  // ------------------------------------------------------------------------------------------------

  private static CliRun.Result pull(String ref, String namespace) {
    return CliRun.run(
        "pull",
        ref,
        "--containerd-address",
        containerd.socket().toString(),
        "--namespace",
        namespace,
        "--plain-http",
        "--config",
        toml.toString());
  }

  private static String md5(String file) throws IOException {
    return TestTrees.md5(tree.resolve(file));
  }

  /** The EROFS mounts under the snapshotter's root. */
  private static List<MountInfo.Mount> lazyMounts() throws IOException {
    return MountInfo.read().stream()
        .filter(m -> m.fsType().equals("erofs") && m.mountPoint().startsWith(snapRoot.toString()))
        .toList();
  }

  private static List<String> overlayOptions() throws IOException {
    List<String> out = new ArrayList<>();
    for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
      if (line.contains(" - overlay ") && line.contains(snapRoot.toString())) {
        out.add(line.substring(line.indexOf(" - overlay ")));
      }
    }
    return out;
  }

  // ---- tests
  // --------------------------------------------------------------------------------------------------

  @Test
  @Order(1)
  void pullThenRunReadsTheRightBytesWhileTheRegistryServesLittle() throws Exception {
    long before = registry.blobBytesServed();
    CliRun.Result r = pull(image, "lazy");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.lastLine().startsWith("pulled lazily: " + image), r.out());
    ContainerdFixture.Ctr run =
        containerd
            .ctr(
                "-n",
                "lazy",
                "run",
                "--rm",
                "--snapshotter",
                "lazypull",
                image,
                "md5",
                "/bin/md5sum",
                "/data/big3")
            .ok();
    assertTrue(run.out().contains(md5("data/big3") + "  /data/big3"), run.out());
    long fetched = registry.blobBytesServed() - before;
    long imageBytes = RegistryImages.imageBytes(lazyImage);
    System.out.printf(
        "containerd lazy run: %d of %d image bytes fetched (%.1f %%)%n",
        fetched, imageBytes, 100.0 * fetched / imageBytes);
    assertTrue(fetched >= BIG_FILE_BYTES / 2, "big3 was read through the registry: " + fetched);
    assertTrue(
        fetched < imageBytes / 4,
        "only a small share was fetched: " + fetched + " of " + imageBytes);
    assertEquals(1, lazyMounts().size(), "one EROFS mount for the image");
    assertTrue(containerd.ctr("-n", "lazy", "images", "ls").ok().out().contains(image));
  }

  @Test
  @Order(2)
  void writesLandInTheUpperLayerAndTwoContainersShareOneLazyLowerLayer() throws Exception {
    containerd
        .ctr(
            "-n",
            "lazy",
            "run",
            "-d",
            "--snapshotter",
            "lazypull",
            image,
            "writer",
            "/bin/sh",
            "-c",
            "echo written > /data/new; echo more >> /data/small; echo done > /tmp/ready; exec sleep 600")
        .ok();
    containerd
        .ctr(
            "-n",
            "lazy",
            "run",
            "-d",
            "--snapshotter",
            "lazypull",
            image,
            "reader",
            "/bin/sleep",
            "600")
        .ok();
    Await.until(
        () ->
            containerd
                .ctr(
                    "-n",
                    "lazy",
                    "task",
                    "exec",
                    "--exec-id",
                    "r" + System.nanoTime(),
                    "writer",
                    "/bin/cat",
                    "/tmp/ready")
                .out()
                .contains("done"),
        "the writer wrote");
    List<MountInfo.Mount> erofs = lazyMounts();
    assertEquals(1, erofs.size(), "one lazy mount for the image: " + erofs);
    String lower = erofs.get(0).mountPoint();
    List<String> overlays = overlayOptions();
    assertEquals(
        2,
        overlays.stream().filter(o -> o.contains("lowerdir=" + lower)).count(),
        "both containers' overlays are on the one lazy mount: " + overlays);
    Path writerUpper = null;
    for (String o : overlays) {
      String upper = o.replaceAll(".*upperdir=([^,]+).*", "$1");
      if (Files.exists(Path.of(upper, "data/new"))) {
        writerUpper = Path.of(upper);
      }
    }
    assertTrue(writerUpper != null, "the writer's new file is in its upper directory");
    assertEquals("written\n", Files.readString(writerUpper.resolve("data/new")));
    assertEquals(
        "hello\nmore\n",
        Files.readString(writerUpper.resolve("data/small")),
        "copied up, then appended");
    assertEquals(
        "hello\n", Files.readString(Path.of(lower, "data/small")), "the lazy layer is unchanged");
    assertFalse(Files.exists(Path.of(lower, "data/new")));
    String seen =
        containerd
            .ctr(
                "-n",
                "lazy",
                "task",
                "exec",
                "--exec-id",
                "s1",
                "reader",
                "/bin/cat",
                "/data/small")
            .ok()
            .out();
    assertEquals("hello\n", seen, "the other container does not see the writer's change");
    try (var files = Files.walk(tmp.resolve("cache"))) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        if (Files.size(f) < 1 << 20) {
          assertFalse(
              Files.readString(f, StandardCharsets.ISO_8859_1).contains("written\n"),
              "no container write reaches the shared cache: " + f);
        }
      }
    }
    containerd.removeContainers("lazy");
  }

  @Test
  @Order(3)
  void anOrdinaryImageFallsBackToUnpackingAndRuns() throws Exception {
    CliRun.Result r = pull(plainImage, "plain");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("not a lazypull image"), r.out());
    String out =
        containerd
            .ctr(
                "-n",
                "plain",
                "run",
                "--rm",
                "--snapshotter",
                "lazypull",
                plainImage,
                "p1",
                "/bin/cat",
                "/data/greeting")
            .ok()
            .out();
    assertEquals("unpacked the ordinary way\n", out);
    String snaps =
        containerd.ctr("-n", "plain", "snapshots", "--snapshotter", "lazypull", "ls").ok().out();
    assertTrue(snaps.contains("Committed"), snaps);
    assertEquals(1, lazyMounts().size(), "the ordinary image added no lazy mount");
  }

  @Test
  @Order(4)
  void ctrSnapshotsBehavePerContainerdsContract() throws Exception {
    String[] s = {"-n", "contract", "snapshots", "--snapshotter", "lazypull"};
    ContainerdFixture.Ctr prepared = ctr(s, "prepare", "--mounts", "k1").ok();
    assertTrue(prepared.out().contains("bind"), prepared.out());
    ctr(s, "commit", "c1", "k1").ok();
    ctr(s, "prepare", "k2", "c1").ok();
    ContainerdFixture.Ctr rm = ctr(s, "rm", "c1");
    assertNotEquals(0, rm.code());
    assertTrue(rm.out().contains("failed precondition") || rm.out().contains("child"), rm.out());
    ctr(s, "view", "v1", "c1").ok();
    // ctr roots what it prepares and commits, not views: containerd's collector removes an unrooted
    // view at its
    // next run (the deletion of k2 below triggers one), so this one is rooted like the others
    ctr(s, "label", "v1", "containerd.io/gc.root=test").ok();
    ContainerdFixture.Ctr commitView = ctr(s, "commit", "x", "v1");
    assertNotEquals(0, commitView.code(), "a view cannot be committed");
    assertNotEquals(0, ctr(s, "prepare", "k2", "c1").code(), "keys are unique");
    ctr(s, "label", "c1", "team=lazy").ok();
    JsonNode info = Json.MAPPER.readTree(ctr(s, "info", "c1").ok().out());
    assertEquals("lazy", info.path("Labels").path("team").asText(), info.toString());
    assertEquals("Committed", info.path("Kind").asText(), info.toString());
    String tree = ctr(s, "tree").ok().out();
    assertTrue(tree.indexOf("c1") < tree.indexOf("k2"), tree);
    assertTrue(ctr(s, "usage", "k2").ok().out().contains("k2"));
    ctr(s, "rm", "k2").ok();
    ctr(s, "rm", "v1").ok();
    ctr(s, "rm", "c1").ok();
    ContainerdFixture.Ctr gone = ctr(s, "info", "c1");
    assertNotEquals(0, gone.code());
    assertTrue(gone.out().contains("not found"), gone.out());
  }

  private static ContainerdFixture.Ctr ctr(String[] prefix, String... args) throws Exception {
    List<String> all = new ArrayList<>(List.of(prefix));
    all.addAll(List.of(args));
    return containerd.ctr(all.toArray(String[]::new));
  }

  @Test
  @Order(5)
  void badLabelsAndUnknownImagesAreClearErrors() throws Exception {
    try (Containerd client =
        new Containerd(containerd.socket(), "errors", Duration.ofSeconds(60))) {
      String other = "sha256:" + "7".repeat(64);
      StatusRuntimeException e =
          assertThrows(
              StatusRuntimeException.class,
              () ->
                  client
                      .snapshots()
                      .prepare(
                          PrepareSnapshotRequest.newBuilder()
                              .setSnapshotter("lazypull")
                              .setKey("bad-layer")
                              .putLabels(RemoteLayers.LABEL_TARGET, other)
                              .putLabels(RemoteLayers.LABEL_IMAGE_REF, image)
                              .putLabels(
                                  RemoteLayers.LABEL_MANIFEST,
                                  lazyImage.manifestDigest().toString())
                              .putLabels(RemoteLayers.LABEL_LAYER, other)
                              .build()));
      assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), e.getStatus().toString());
      assertTrue(
          e.getStatus().getDescription().contains("is not a layer of lazypull image"),
          e.toString());
      e =
          assertThrows(
              StatusRuntimeException.class,
              () ->
                  client
                      .snapshots()
                      .prepare(
                          PrepareSnapshotRequest.newBuilder()
                              .setSnapshotter("lazypull")
                              .setKey("bad-digest")
                              .putLabels(RemoteLayers.LABEL_TARGET, other)
                              .putLabels(RemoteLayers.LABEL_IMAGE_REF, image)
                              .putLabels(RemoteLayers.LABEL_MANIFEST, "sha256:nothex")
                              .putLabels(RemoteLayers.LABEL_LAYER, other)
                              .build()));
      assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), e.getStatus().toString());
      assertTrue(e.getStatus().getDescription().contains("is not a sha256 digest"), e.toString());
    }
    CliRun.Result unknown = pull(registry.host() + "/no/such:v1", "errors");
    assertEquals(1, unknown.code());
    assertTrue(unknown.err().contains("no/such"), unknown.err());
    assertTrue(
        containerd.ctr("-n", "errors", "images", "ls", "-q").ok().out().isBlank(),
        "nothing was created");
  }

  @Test
  @Order(6)
  void aStoppedDaemonIsAClearErrorAndARestartedOneServesAgain() throws Exception {
    daemon.terminate(); // a clean stop unmounts what the daemon served, our lazy mount too
    Await.until(() -> lazyMounts().isEmpty(), "the daemon's clean stop unmounted the lazy mount");
    ContainerdFixture.Ctr run =
        containerd.ctr(
            Duration.ofMinutes(1),
            "-n",
            "lazy",
            "run",
            "--rm",
            "--snapshotter",
            "lazypull",
            image,
            "nodaemon",
            "/bin/cat",
            "/data/small");
    assertNotEquals(0, run.code(), run.out());
    assertTrue(run.out().contains("lazypull daemon"), "the error names the daemon: " + run.out());
    containerd.removeContainers("lazy");
    startDaemon();
    Await.until(
        () -> lazyMounts().size() == 1,
        Duration.ofSeconds(60),
        "the snapshotter mounted the image again");
    String out =
        containerd
            .ctr(
                "-n",
                "lazy",
                "run",
                "--rm",
                "--snapshotter",
                "lazypull",
                image,
                "again",
                "/bin/md5sum",
                "/data/big4")
            .ok()
            .out();
    assertTrue(out.contains(md5("data/big4")), out);
  }

  @Test
  @Order(7)
  void aRunningContainerSurvivesTheSnapshottersRestartAndTheDaemonsCrash() throws Exception {
    containerd
        .ctr(
            "-n",
            "lazy",
            "run",
            "-d",
            "--snapshotter",
            "lazypull",
            image,
            "long",
            "/bin/sleep",
            "600")
        .ok();
    snapshotterProcess.kill();
    startSnapshotter();
    String out =
        containerd
            .ctr(
                "-n",
                "lazy",
                "task",
                "exec",
                "--exec-id",
                "e1",
                "long",
                "/bin/md5sum",
                "/data/big5")
            .ok()
            .out();
    assertTrue(out.contains(md5("data/big5")), "read after the snapshotter's restart: " + out);
    daemon.kill(); // a crash: the group's keeper holds pending reads until the next daemon answers
    // them
    startDaemon();
    out =
        containerd
            .ctr(
                "-n",
                "lazy",
                "task",
                "exec",
                "--exec-id",
                "e2",
                "long",
                "/bin/md5sum",
                "/data/big6")
            .ok()
            .out();
    assertTrue(out.contains(md5("data/big6")), "read after the daemon's restart: " + out);
    out =
        containerd
            .ctr(
                "-n",
                "lazy",
                "run",
                "--rm",
                "--snapshotter",
                "lazypull",
                image,
                "fresh",
                "/bin/md5sum",
                "/data/big7")
            .ok()
            .out();
    assertTrue(out.contains(md5("data/big7")), out);
    containerd.removeContainers("lazy");
  }

  @Test
  @Order(8)
  void usageIsRealAndRemovingTheImageReleasesItsMount() throws Exception {
    String usage =
        containerd.ctr("-n", "lazy", "snapshots", "--snapshotter", "lazypull", "usage").ok().out();
    String chain = ImagePuller.chainIds(List.of(lazyImage.bootstrap().digest().toString())).get(0);
    String line =
        usage
            .lines()
            .filter(l -> l.startsWith(chain))
            .findFirst()
            .orElseThrow(() -> new AssertionError("no usage line for " + chain + ":\n" + usage));
    assertTrue(
        line.contains("MiB"),
        "the lazy layer holds its bootstrap and what was read (big3..7): " + line);
    JsonNode status = new ControlClient(daemonSocket).call(ControlClient.request("status"));
    assertTrue(status.path("objects").size() > 0, "the daemon serves the image");
    containerd.ctr("-n", "lazy", "images", "rm", image).ok();
    Await.until(
        () -> lazyMounts().isEmpty(), Duration.ofSeconds(60), "the image's mount was released");
    Await.until(
        () ->
            new ControlClient(daemonSocket)
                .call(ControlClient.request("status"))
                .path("objects")
                .isEmpty(),
        Duration.ofSeconds(60),
        "the daemon stopped serving the image");
    assertTrue(
        containerd
                .ctr("-n", "lazy", "snapshots", "--snapshotter", "lazypull", "ls")
                .ok()
                .out()
                .lines()
                .count()
            <= 1,
        "no snapshot left in the namespace");
  }

  @Test
  @Order(9)
  void theSameImageThroughAnotherRegistryNameRunsToo() throws Exception {
    // the daemon still has the image registered under 127.0.0.1:PORT; localhost:PORT is another
    // reference to it
    String alias = image.replace("127.0.0.1:", "localhost:");
    CliRun.Result r = pull(alias, "alias");
    assertEquals(0, r.code(), r.err());
    String out =
        containerd
            .ctr(
                "-n",
                "alias",
                "run",
                "--rm",
                "--snapshotter",
                "lazypull",
                alias,
                "a1",
                "/bin/md5sum",
                "/data/big8")
            .ok()
            .out();
    assertTrue(out.contains(md5("data/big8")), out);
  }
}

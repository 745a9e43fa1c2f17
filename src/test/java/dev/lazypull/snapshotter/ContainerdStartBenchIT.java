package dev.lazypull.snapshotter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.control.ControlClient;
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
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Time from pull to a container's first output for a large image — the JDK running {@code java
 * -version} — through lazypull's snapshotter ({@code lazypull pull} + {@code ctr run --snapshotter
 * lazypull}) and through containerd's own path ({@code ctr images pull} + {@code ctr run},
 * overlayfs), from one docker-registry on loopback, each run cold (the daemon's cache wiped,
 * containerd's content and snapshots removed, the page cache dropped). Prints the figures for
 * docs/benchmarks.md; asserts only that both ran. Run: {@code mvn -Pbench verify
 * -Dit.test=ContainerdStartBenchIT -Dtest=NoSuchTest -Dsurefire.failIfNoSpecifiedTests=false}
 */
@Tag("bench")
class ContainerdStartBenchIT {
  private static final int RUNS = 3;

  /** The second setting: a 100 Mbit/s link between the node and the registry. */
  private static final long LINK_BITS_PER_SECOND = 100_000_000L;

  private int namespaces;

  @TempDir Path tmp;

  /**
   * The JDK and the shared libraries it links (and the loader), as a container root file system.
   */
  private static Path jdkRootfs(Path root) throws Exception {
    Path jdk = Path.of("/usr/lib/jvm/java-17-openjdk-amd64");
    Requirements.require(
        Files.isExecutable(jdk.resolve("bin/java")), "Debian's OpenJDK 17 at " + jdk);
    String script =
        String.join(
            "\n",
            "set -u",
            "J=" + jdk,
            "R=" + root,
            "mkdir -p $R/jdk $R/tmp $R/proc $R/dev $R/sys $R/etc",
            "cp -rL $J/. $R/jdk/ 2>/dev/null || true", // dangling links (src.zip) are left out
            "(ldd $J/bin/java; find -L $J/lib -name '*.so' -exec ldd {} \\;) 2>/dev/null | grep -o '/[^ ]*\\.so[^ ]*'"
                + " | sort -u | while read f; do [ -e \"$f\" ] && cp -L --parents \"$f\" $R; done",
            "cp -L --parents /lib64/ld-linux-x86-64.so.2 $R",
            "test -x $R/jdk/bin/java -a -f $R/jdk/lib/libjli.so -a -f $R/jdk/lib/modules");
    Requirements.run("bash", "-c", script);
    return root;
  }

  private record Timing(double pullSeconds, double firstOutputSeconds, long registryBytes) {}

  @Test
  void lazypullSnapshotterVersusCtrPullAndOverlayfs() throws Exception {
    Requirements.requireRoot();
    Path jar = Path.of(System.getProperty("lazypull.jar", "target/lazypull.jar"));
    Requirements.require(Files.isRegularFile(jar), "the packaged jar " + jar);
    Path rootfs = jdkRootfs(tmp.resolve("rootfs"));
    Path daemonSocket = tmp.resolve("run/lazypull.sock");
    Path snapSocket = tmp.resolve("run/snapshotter.sock");
    Path snapRoot = tmp.resolve("snapshotter");
    DockerRegistryFixture registry = null;
    ContainerdFixture containerd = null;
    JarProcess daemon = null;
    JarProcess snapshotter = null;
    try {
      registry = DockerRegistryFixture.builder(tmp.resolve("registry")).start();
      Path toml = RegistryImages.config(tmp.resolve("config"), null);
      String lazyRef = registry.host() + "/bench/jdk-lazy:v1";
      LazyImage lazyImage = RegistryImages.packAndPush(rootfs, lazyRef, toml, tmp);
      String plainRef = registry.host() + "/bench/jdk-plain:v1";
      TestImages.Layer layer = TestImages.tarOf(rootfs, tmp.resolve("jdk-layer.tar.gz"), "gzip");
      TestImages.write(tmp.resolve("plain-layout"), "v1", List.of(layer));
      CliRun.Result copy =
          CliRun.run(
              "copy",
              "oci:" + tmp.resolve("plain-layout") + ":v1",
              plainRef,
              "--plain-http",
              "--config",
              toml.toString());
      assertEquals(0, copy.code(), copy.err());
      long plainBytes = Files.size(layer.stored());

      snapshotter =
          JarProcess.start(
              jar,
              tmp.resolve("snapshotter"),
              "snapshotter",
              "--address",
              snapSocket.toString(),
              "--root",
              snapRoot.toString(),
              "--socket",
              daemonSocket.toString(),
              "--plain-http",
              "--config",
              toml.toString());
      snapshotter.awaitLine("lazypull snapshotter: serving", 60);
      containerd =
          ContainerdFixture.start(tmp.resolve("containerd"), Map.of("lazypull", snapSocket));
      daemon = startDaemon(jar, daemonSocket, toml);
      warmUp(containerd, jar, registry, toml);
      Map<String, List<Timing[]>> results = new LinkedHashMap<>();
      results.put(
          "loopback",
          measure(
              registry.host(), registry, containerd, jar, toml, daemonSocket, snapRoot, lazyImage));
      try (ThrottledProxy link =
          new ThrottledProxy(
              new InetSocketAddress("127.0.0.1", Integer.parseInt(registry.host().split(":")[1])),
              LINK_BITS_PER_SECOND)) {
        results.put(
            LINK_BITS_PER_SECOND / 1_000_000 + " Mbit/s",
            measure(
                link.host(), registry, containerd, jar, toml, daemonSocket, snapRoot, lazyImage));
      }
      long lazyBytes = RegistryImages.imageBytes(lazyImage);
      System.out.printf(
          "image: the JDK (%s) as a rootfs; lazypull image %.1f MiB stored, ordinary image %.1f MiB "
              + "(one tar.gz layer); load average %s%n",
          rootfs,
          lazyBytes / 1048576.0,
          plainBytes / 1048576.0,
          Files.readString(Path.of("/proc/loadavg")).strip());
      results.forEach(
          (link, runs) -> {
            for (int i = 0; i < runs.size(); i++) {
              Timing l = runs.get(i)[0];
              Timing p = runs.get(i)[1];
              System.out.printf(
                  "%s run %d  lazypull: pull %.2f s, first output %.2f s, %.1f MiB fetched | "
                      + "ctr+overlayfs: pull %.2f s, first output %.2f s, %.1f MiB fetched%n",
                  link,
                  i + 1,
                  l.pullSeconds(),
                  l.firstOutputSeconds(),
                  l.registryBytes() / 1048576.0,
                  p.pullSeconds(),
                  p.firstOutputSeconds(),
                  p.registryBytes() / 1048576.0);
            }
            double lm = median(runs.stream().mapToDouble(r -> r[0].firstOutputSeconds()).toArray());
            double pm = median(runs.stream().mapToDouble(r -> r[1].firstOutputSeconds()).toArray());
            System.out.printf(
                "%s median time to first output: lazypull %.2f s, ctr+overlayfs %.2f s, ratio %.2f%n",
                link, lm, pm, lm / pm);
          });
    } finally {
      if (containerd != null) {
        for (int i = 1; i <= namespaces; i++) {
          containerd.removeContainers("lazyr" + i);
          containerd.removeContainers("plainr" + i);
        }
        containerd.removeContainers("warm");
        containerd.close();
      }
      if (snapshotter != null) {
        snapshotter.close();
      }
      for (MountInfo.Mount m : MountInfo.read()) {
        if (m.mountPoint().startsWith(tmp.toString())) {
          Mounts.umount(m.mountPoint(), Mounts.MNT_DETACH);
        }
      }
      if (daemon != null) {
        daemon.close();
      }
      if (registry != null) {
        registry.close();
      }
    }
  }

  /**
   * {@link #RUNS} cold runs of each path, the registry reached as {@code host}: {lazypull,
   * overlayfs} each.
   */
  private List<Timing[]> measure(
      String host,
      DockerRegistryFixture registry,
      ContainerdFixture containerd,
      Path jar,
      Path toml,
      Path daemonSocket,
      Path snapRoot,
      LazyImage lazyImage)
      throws Exception {
    String lazyRef = host + "/bench/jdk-lazy:v1";
    String plainRef = host + "/bench/jdk-plain:v1";
    String registered = host + "/bench/jdk-lazy@" + lazyImage.manifestDigest();
    List<Timing[]> out = new ArrayList<>();
    for (int i = 0; i < RUNS; i++) {
      String ns = "r" + (++namespaces);
      dropCaches();
      long served = registry.blobBytesServed();
      long t0 = System.nanoTime();
      pullLazily(jar, containerd, lazyRef, "lazy" + ns, toml);
      long t1 = System.nanoTime();
      long first =
          firstOutput(
              containerd, "lazy" + ns, lazyRef, "lazypull", "OpenJDK", "/jdk/bin/java", "-version");
      Timing lazy =
          new Timing((t1 - t0) / 1e9, (first - t0) / 1e9, registry.blobBytesServed() - served);
      containerd.ctr("-n", "lazy" + ns, "images", "rm", "--sync", lazyRef).ok();
      Await.until(
          () ->
              MountInfo.read().stream()
                  .noneMatch(m -> m.mountPoint().startsWith(snapRoot.toString())),
          Duration.ofSeconds(60),
          "the lazy mount was released");
      Await.until(
          () -> evicted(daemonSocket, registered),
          Duration.ofSeconds(90),
          "the daemon released and evicted the image (the next run is cold)");

      dropCaches();
      served = registry.blobBytesServed();
      t0 = System.nanoTime();
      containerd
          .ctr(
              Duration.ofMinutes(10),
              "-n",
              "plain" + ns,
              "images",
              "pull",
              "--plain-http",
              plainRef)
          .ok();
      t1 = System.nanoTime();
      first =
          firstOutput(
              containerd,
              "plain" + ns,
              plainRef,
              "overlayfs",
              "OpenJDK",
              "/jdk/bin/java",
              "-version");
      Timing plain =
          new Timing((t1 - t0) / 1e9, (first - t0) / 1e9, registry.blobBytesServed() - served);
      containerd.ctr("-n", "plain" + ns, "images", "rm", "--sync", plainRef).ok();
      out.add(new Timing[] {lazy, plain});
    }
    return out;
  }

  private JarProcess startDaemon(Path jar, Path socket, Path toml) throws Exception {
    JarProcess d =
        JarProcess.start(
            jar,
            tmp.resolve("daemon"),
            "daemon",
            "--frontend",
            "fanotify",
            "--cache-dir",
            Files.createDirectories(tmp.resolve("cache")).toString(),
            "--state-dir",
            tmp.resolve("state").toString(),
            "--socket",
            socket.toString(),
            "--plain-http",
            "--config",
            toml.toString());
    Await.until(
        () -> {
          try {
            new ControlClient(socket).call(ControlClient.request("ping"));
            return true;
          } catch (IOException e) {
            return d.isAlive() ? false : fail(d);
          }
        },
        Duration.ofSeconds(60),
        "the daemon answers");
    return d;
  }

  /**
   * The services are long-running: their code is loaded and compiled before the first image a node
   * pulls. One small image through each path first (the busybox tree, lazily and the ordinary way),
   * so the timed runs see warm processes and cold image data.
   */
  private void warmUp(
      ContainerdFixture containerd, Path jar, DockerRegistryFixture registry, Path toml)
      throws Exception {
    Path tree = ContainerdSnapshotterIT.busyboxTree(tmp.resolve("warm-tree"), false);
    String lazyRef = registry.host() + "/bench/warm-lazy:v1";
    RegistryImages.packAndPush(tree, lazyRef, toml, tmp);
    pullLazily(jar, containerd, lazyRef, "warm", toml);
    firstOutput(containerd, "warm", lazyRef, "lazypull", "hello", "/bin/cat", "/data/small");
    String plainRef = registry.host() + "/bench/warm-plain:v1";
    TestImages.write(
        tmp.resolve("warm-layout"),
        "v1",
        List.of(TestImages.tarOf(tree, tmp.resolve("warm.tar.gz"), "gzip")));
    assertEquals(
        0,
        CliRun.run(
                "copy",
                "oci:" + tmp.resolve("warm-layout") + ":v1",
                plainRef,
                "--plain-http",
                "--config",
                toml.toString())
            .code());
    containerd.ctr("-n", "warm", "images", "pull", "--plain-http", plainRef).ok();
    firstOutput(containerd, "warm", plainRef, "overlayfs", "hello", "/bin/cat", "/data/small");
    containerd.ctr("-n", "warm", "images", "rm", "--sync", lazyRef, plainRef).ok();
    Await.until(
        () ->
            MountInfo.read().stream()
                .noneMatch(
                    m -> m.fsType().equals("erofs") && m.mountPoint().startsWith(tmp.toString())),
        Duration.ofSeconds(60),
        "the warm-up image was released");
  }

  /** {@code lazypull pull} as users run it: its own JVM. */
  private void pullLazily(Path jar, ContainerdFixture containerd, String ref, String ns, Path toml)
      throws Exception {
    Path log = tmp.resolve("pull-" + ns + ".log");
    Process pull =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-jar",
                jar.toString(),
                "pull",
                ref,
                "--containerd-address",
                containerd.socket().toString(),
                "--namespace",
                ns,
                "--plain-http",
                "--config",
                toml.toString())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    assertTrue(pull.waitFor(5, TimeUnit.MINUTES) && pull.exitValue() == 0, Files.readString(log));
  }

  /**
   * Whether the daemon evicted every cache file of {@code image} (it can once nothing has it
   * prepared).
   */
  private static boolean evicted(Path socket, String image) {
    try {
      return new ControlClient(socket)
              .call(ControlClient.request("evict").put("image", image).put("includeShared", true))
              .path("report")
              .path("inUse")
              .asInt(-1)
          == 0;
    } catch (IOException e) {
      return false;
    }
  }

  private static boolean fail(JarProcess d) {
    throw new AssertionError("the daemon exited\n" + d.output());
  }

  /**
   * Runs {@code command} in a new container; returns when its first output byte arrived (nanoTime).
   */
  private static long firstOutput(
      ContainerdFixture containerd,
      String ns,
      String ref,
      String snapshotter,
      String expect,
      String... command)
      throws Exception {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                "ctr",
                "-a",
                containerd.socket().toString(),
                "-n",
                ns,
                "run",
                "--rm",
                "--snapshotter",
                snapshotter,
                ref,
                "bench"));
    cmd.addAll(List.of(command));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    long first = 0;
    StringBuilder text = new StringBuilder();
    try (InputStream in = p.getInputStream()) {
      int b;
      while ((b = in.read()) >= 0) {
        if (first == 0) {
          first = System.nanoTime();
        }
        text.append((char) b);
      }
    }
    assertTrue(p.waitFor(5, TimeUnit.MINUTES), "ctr run finished");
    assertEquals(0, p.exitValue(), text.toString());
    assertTrue(text.toString().contains(expect), text.toString());
    return first;
  }

  private static void dropCaches() throws Exception {
    Requirements.run("sync");
    Files.writeString(Path.of("/proc/sys/vm/drop_caches"), "3\n");
  }

  private static double median(double[] v) {
    double[] s = v.clone();
    Arrays.sort(s);
    return s[s.length / 2];
  }
}

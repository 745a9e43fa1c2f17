package dev.lazypull.bench;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.LazyImage;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.LazypullProcess;
import dev.lazypull.testing.RegistryImages;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Cold reads from Debian's {@code docker-registry} on loopback, against the obvious peers, in one
 * run:
 *
 * <ul>
 *   <li><b>NBD cold</b> (issue 5): {@code nbdcopy} of one data blob exported raw by {@code lazypull
 *       nbd --blob} with a fresh cache, versus {@code nbdkit curl} pointing at the same blob's URL;
 *       goal ≥ 1.2x.
 *   <li><b>prefetch</b> (issue 6): {@code lazypull prefetch --standalone --all} of the whole image
 *       into a fresh NBD cache, versus one {@code curl} process downloading the same blobs
 *       (bootstrap, data blob, digest table) into files on the same file system; goal ≥ 1.0x.
 *       Whole-process wall time on both sides (our JVM start included).
 * </ul>
 *
 * Runs alternate ours/peer so load drift hits both; medians are reported. Run after {@code mvn
 * package -DskipTests}: {@code mvn -Pbench test -Dtest=RegistryColdBench}; {@code -Dbench.mib=N}
 * sets the data size (default 512).
 */
@Tag("bench")
class RegistryColdBench {
  private static final int RUNS = 5;
  private static Path work;
  private static Path jar;
  private static DockerRegistryFixture reg;
  private static Path toml;
  private static String ref;
  private static LazyImage img;
  private static int mib;

  @BeforeAll
  static void setUp() throws Exception {
    for (String tool : new String[] {"nbdcopy", "nbdkit", "curl", "docker-registry"}) {
      Requirements.requireTool(tool);
    }
    mib = Integer.getInteger("bench.mib", 512);
    jar = VmHarness.jar();
    work = VmHarness.baseDir().resolve("target/bench-work/registry-" + mib);
    Requirements.run("rm", "-rf", work.toString());
    Files.createDirectories(work);
    reg = DockerRegistryFixture.builder(work.resolve("registry")).start();
    toml = RegistryImages.config(work, "[nbd]\nlog_level = \"warn\"\n");
    Path tree = Files.createDirectories(work.resolve("tree"));
    TestTrees.write(tree.resolve("big.bin"), (long) mib << 20, new Random(1));
    ref = reg.host() + "/bench/app:v1";
    img = RegistryImages.packAndPush(tree, ref, toml, work.resolve("scratch"));
    Requirements.run("rm", "-rf", tree.toString());
    // The registry's files in the page cache before anything is timed: both sides read the same
    // warm storage.
    Requirements.run(
        "bash",
        "-c",
        "find '"
            + work.resolve("registry/storage")
            + "' -name data -exec cat {} + "
            + ">/dev/null");
  }

  @AfterAll
  static void tearDown() {
    if (reg != null) {
      reg.close();
    }
  }

  private static String blobUrl(Descriptor d) {
    return reg.url() + "/v2/bench/app/blobs/" + d.digest();
  }

  @Test
  void nbdColdFromTheRegistryVersusNbdkitCurl() throws Exception {
    Descriptor blob = img.blobs().get(0);
    Path nbdkitSock = work.resolve("nbdkit.sock");
    List<Double> ours = new ArrayList<>();
    List<Double> peer = new ArrayList<>();
    List<Double> flat = new ArrayList<>();
    List<Double> oursCpu = new ArrayList<>();
    List<Double> peerCpu = new ArrayList<>();
    for (int run = 0; run < RUNS; run++) {
      Path cache = work.resolve("nbd-cache");
      Requirements.run("rm", "-rf", cache.toString());
      Requirements.run("sync");
      try (LazypullProcess p =
          LazypullProcess.start(
              jar,
              work.resolve("nbd"),
              "nbd",
              ref,
              "--blob",
              blob.digest().toString(),
              "--plain-http",
              "--config",
              toml.toString(),
              "--listen",
              "unix:" + work.resolve("ours.sock"),
              "--cache-dir",
              cache.toString())) {
        p.awaitLine("serving", 60);
        double c0 = cpuSeconds(p.pid());
        ours.add(copySeconds(work.resolve("ours.sock")));
        oursCpu.add(Math.round((cpuSeconds(p.pid()) - c0) * 100) / 100.0);
        p.stop();
      }
      Files.deleteIfExists(nbdkitSock);
      Process nbdkit =
          new ProcessBuilder(
                  "nbdkit", "-f", "-r", "-U", nbdkitSock.toString(), "curl", "url=" + blobUrl(blob))
              .redirectErrorStream(true)
              .redirectOutput(work.resolve("nbdkit.log").toFile())
              .start();
      try {
        for (int i = 0; i < 500 && !Files.exists(nbdkitSock); i++) {
          Thread.sleep(10);
        }
        double c0 = cpuSeconds(nbdkit.pid());
        peer.add(copySeconds(nbdkitSock));
        peerCpu.add(Math.round((cpuSeconds(nbdkit.pid()) - c0) * 100) / 100.0);
      } finally {
        nbdkit.destroy();
        nbdkit.waitFor(10, TimeUnit.SECONDS);
      }
      // For information: the whole flattened device, cold.
      Requirements.run("rm", "-rf", cache.toString());
      Requirements.run("sync");
      try (LazypullProcess p =
          LazypullProcess.start(
              jar,
              work.resolve("nbd-flat"),
              "nbd",
              ref,
              "--plain-http",
              "--config",
              toml.toString(),
              "--listen",
              "unix:" + work.resolve("flat.sock"),
              "--cache-dir",
              cache.toString())) {
        p.awaitLine("serving", 60);
        flat.add(copySeconds(work.resolve("flat.sock")));
        p.stop();
      }
    }
    double mb = blob.size() / 1048576.0;
    System.out.printf(
        Locale.ROOT,
        "%nNBD cold from docker-registry (loopback): nbdcopy of one %.0f MiB blob, %d CPUs%n",
        mb,
        Runtime.getRuntime().availableProcessors());
    System.out.printf(
        Locale.ROOT,
        "  lazypull nbd --blob : median %.3f s = %5.0f MiB/s  (runs %s)%n",
        median(ours),
        mb / median(ours),
        ours);
    System.out.printf(
        Locale.ROOT,
        "  nbdkit curl         : median %.3f s = %5.0f MiB/s  (runs %s)%n",
        median(peer),
        mb / median(peer),
        peer);
    System.out.printf(
        Locale.ROOT,
        "  ratio (lazypull / nbdkit curl throughput): %.2fx  (goal >= 1.2x)%n",
        median(peer) / median(ours));
    System.out.printf(
        Locale.ROOT,
        "  server CPU per copy: lazypull median %.2f s %s, nbdkit median %.2f s %s%n",
        median(oursCpu),
        oursCpu,
        median(peerCpu),
        peerCpu);
    System.out.printf(
        Locale.ROOT, "  flattened device, cold: median %.3f s  (runs %s)%n", median(flat), flat);
    System.out.printf(
        Locale.ROOT,
        "  load average at the end: %s%n",
        Files.readString(Path.of("/proc/loadavg")).trim());
  }

  @Test
  void standalonePrefetchAllVersusCurl() throws Exception {
    List<Descriptor> blobs = new ArrayList<>(img.allBlobs());
    blobs.addAll(img.chunkTables());
    long bytes = blobs.stream().mapToLong(Descriptor::size).sum();
    List<String> curl = new ArrayList<>(List.of("curl", "-sSf"));
    for (Descriptor d : blobs) {
      curl.addAll(
          List.of(blobUrl(d), "-o", work.resolve("curl-out").resolve(d.digest().hex()).toString()));
    }
    List<Double> ours = new ArrayList<>();
    List<Double> peer = new ArrayList<>();
    List<Double> oursCpu = new ArrayList<>();
    List<Double> peerCpu = new ArrayList<>();
    List<Double> oursFetch = new ArrayList<>();
    for (int run = 0; run < RUNS; run++) {
      Path cache = work.resolve("prefetch-cache");
      Requirements.run("rm", "-rf", cache.toString(), work.resolve("curl-out").toString());
      Files.createDirectories(work.resolve("curl-out"));
      Requirements.run("sync");
      long t0 = System.nanoTime();
      String out =
          Requirements.run(
              timed(
                  Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                  "-jar",
                  jar.toString(),
                  "prefetch",
                  ref,
                  "--standalone",
                  "--all",
                  "--plain-http",
                  "--config",
                  toml.toString(),
                  "--cache-dir",
                  cache.toString()));
      ours.add(seconds(t0));
      oursCpu.add(cpu(out));
      Matcher fm = Pattern.compile("fetched .* in ([0-9.]+) s").matcher(out);
      oursFetch.add(fm.find() ? Double.parseDouble(fm.group(1)) : Double.NaN);
      Requirements.run("sync");
      t0 = System.nanoTime();
      out = Requirements.run(timed(curl.toArray(String[]::new)));
      peer.add(seconds(t0));
      peerCpu.add(cpu(out));
    }
    double mb = bytes / 1048576.0;
    System.out.printf(
        Locale.ROOT,
        "%nprefetch --all from docker-registry (loopback): %d blobs, %.0f MiB, %d CPUs%n",
        blobs.size(),
        mb,
        Runtime.getRuntime().availableProcessors());
    System.out.printf(
        Locale.ROOT,
        "  lazypull prefetch --standalone --all : median %.3f s = %5.0f MiB/s  (runs %s)%n",
        median(ours),
        mb / median(ours),
        ours);
    System.out.printf(
        Locale.ROOT,
        "  curl (one process, same blobs)       : median %.3f s = %5.0f MiB/s  (runs %s)%n",
        median(peer),
        mb / median(peer),
        peer);
    System.out.printf(
        Locale.ROOT,
        "  ratio (lazypull / curl throughput): %.2fx  (goal >= 1.0x)%n",
        median(peer) / median(ours));
    System.out.printf(
        Locale.ROOT,
        "  lazypull's fetch phase alone (after JVM start, manifest, tables): median %.2f s %s"
            + " = %.2fx of curl%n",
        median(oursFetch),
        oursFetch,
        median(peer) / median(oursFetch));
    System.out.printf(
        Locale.ROOT,
        "  process CPU (user+sys): lazypull median %.2f s %s, curl median %.2f s %s%n",
        median(oursCpu),
        oursCpu,
        median(peerCpu),
        peerCpu);
    System.out.printf(
        Locale.ROOT,
        "  load average at the end: %s%n",
        Files.readString(Path.of("/proc/loadavg")).trim());
  }

  /** The command under /usr/bin/time, which appends a line "@@CPU user sys". */
  private static String[] timed(String... cmd) {
    List<String> all = new ArrayList<>(List.of("/usr/bin/time", "-f", "@@CPU %U %S"));
    all.addAll(List.of(cmd));
    return all.toArray(String[]::new);
  }

  private static double cpu(String output) {
    String line =
        output.lines().filter(l -> l.startsWith("@@CPU ")).reduce((a, b) -> b).orElseThrow();
    String[] f = line.split(" ");
    return Math.round((Double.parseDouble(f[1]) + Double.parseDouble(f[2])) * 100) / 100.0;
  }

  /** utime + stime of a live process, from /proc/PID/stat (clock ticks of 1/100 s). */
  private static double cpuSeconds(long pid) throws IOException {
    String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0;
  }

  private static double copySeconds(Path socket) throws Exception {
    long t0 = System.nanoTime();
    Requirements.run("nbdcopy", "nbd+unix:///?socket=" + socket, "null:");
    return seconds(t0);
  }

  private static double seconds(long t0) {
    return Math.round((System.nanoTime() - t0) / 1e6) / 1e3;
  }

  private static double median(List<Double> xs) {
    List<Double> s = new ArrayList<>(xs);
    Collections.sort(s);
    return s.get(s.size() / 2);
  }
}

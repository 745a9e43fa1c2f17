package dev.lazypull.bench;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.control.ControlClient;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.LazyImage;
import dev.lazypull.testing.CliRun;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.LazypullProcess;
import dev.lazypull.testing.RegistryImages;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
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
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Cold reads from Debian's {@code docker-registry} on loopback, against the obvious peers, in one
 * run, with the CPU each side spends per GiB moved (issue 15). Two images of one {@code mib} MiB
 * file each: <b>raw</b> ({@code pack --compression none}, random bytes) and <b>zstd</b> (the
 * default {@code pack}, of word-salad text that zstd shrinks about 3x). Paths:
 *
 * <ul>
 *   <li><b>standalone prefetch</b> (issues 6, 15): {@code lazypull prefetch --standalone --all} of
 *       the whole image into a fresh NBD cache, versus one {@code curl} process downloading the
 *       same blobs (bootstrap, data blob, digest table) into files on the same file system; goal ≥
 *       1.0x. Whole-process wall time and CPU on both sides (our JVM start included), both images.
 *   <li><b>through the daemon</b> (issue 15): {@code lazypull daemon --frontend fanotify} on this
 *       host, the image mounted, then {@code lazypull prefetch IMAGE --all --wait} (the client
 *       command, its JVM start included; goal ≥ 1.5x), the same job started over the control socket
 *       from the bench and polled every 10 ms (the daemon's own time), and a cold {@code cat} of
 *       the file through the mount (goal ≥ 1.0x); versus {@code curl} of the image's data blob.
 *       CPU: the daemon's, from /proc (the client's separately).
 *   <li><b>NBD cold</b> (issues 5, 15): {@code nbdcopy} of one data blob exported raw by {@code
 *       lazypull nbd --blob} with a fresh cache, versus {@code nbdkit curl} pointing at the same
 *       blob's URL; goal ≥ 3x with server CPU ≤ 2x nbdkit's (raw image only: nbdkit would export
 *       the compressed blob).
 * </ul>
 *
 * Our commands run through the release's launcher ({@code src/main/dist/bin/lazypull}) over the
 * built jar, with the JVM options it picks for them, as users run them. The CPU goal of every path
 * is ≤ 2x the peer's CPU per byte moved (here: per GiB of blob bytes on the wire, the same bytes
 * for both sides; for zstd our side also decompresses them). Runs alternate ours/peer so load drift
 * hits both; medians are reported, and a markdown table of all paths at the end. Run after {@code
 * mvn package -DskipTests}: {@code mvn -Pbench test -Dtest=RegistryColdBench}; {@code
 * -Dbench.mib=N} sets the data size (default 512), {@code -Dbench.runs=N} the runs per path
 * (default 5), {@code -Dbench.jfr=DIR} adds one untimed JFR-recorded run of each standalone
 * prefetch and of one daemon prefetch (files in DIR), {@code -Dbench.prefetchThreads=N} sets the
 * daemon's {@code [prefetch] threads} (the ceiling of its adaptive concurrency), and {@code
 * -Dbench.daemon=false} skips the daemon paths (they need root and EROFS with fanotify pre-content
 * events on this host).
 */
@Tag("bench")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class RegistryColdBench {
  private static final int RUNS = Integer.getInteger("bench.runs", 5);
  private static final String JFR = System.getProperty("bench.jfr");
  private static Path work;
  private static Path jar;
  private static DockerRegistryFixture reg;
  private static Path toml;
  private static int mib;
  private static final List<Row> ROWS = new ArrayList<>();

  /** A test image in the registry. */
  private record Image(String name, String repo, String ref, LazyImage img) {
    long dataBytes() {
      return img.blobs().stream().mapToLong(Descriptor::size).sum();
    }
  }

  private static Image raw;
  private static Image zstd;

  /** One path of the summary table; CPU in seconds per run, wire bytes per run. */
  private record Row(
      String path,
      String peer,
      double goal,
      List<Double> ours,
      List<Double> peerWall,
      List<Double> oursCpu,
      List<Double> peerCpu,
      long wireBytes) {}

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
    String prefetchThreads = System.getProperty("bench.prefetchThreads");
    toml =
        RegistryImages.config(
            work,
            "[nbd]\nlog_level = \"warn\"\n"
                + (prefetchThreads == null
                    ? ""
                    : "[prefetch]\nthreads = " + prefetchThreads + "\n"));
    Path tree = Files.createDirectories(work.resolve("tree"));
    TestTrees.write(tree.resolve("big.bin"), (long) mib << 20, new Random(1));
    raw = push("raw", tree, "--compression", "none");
    Requirements.run("rm", "-rf", tree.toString());
    Files.createDirectories(tree);
    writeText(tree.resolve("big.bin"), (long) mib << 20, new Random(2));
    zstd = push("zstd", tree);
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

  private static Image push(String name, Path tree, String... flags) throws IOException {
    String repo = "bench/" + name;
    String ref = reg.host() + "/" + repo + ":v1";
    LazyImage img =
        RegistryImages.packAndPush(tree, ref, toml, work.resolve("scratch-" + name), flags);
    return new Image(name, repo, ref, img);
  }

  /** Text of random words from a small vocabulary: compresses about 3x with zstd. */
  private static void writeText(Path file, long size, Random rnd) throws IOException {
    String[] words = new String[2048];
    for (int i = 0; i < words.length; i++) {
      StringBuilder w = new StringBuilder();
      for (int n = 2 + rnd.nextInt(8); n > 0; n--) {
        w.append((char) ('a' + rnd.nextInt(26)));
      }
      words[i] = w.toString();
    }
    byte[] buf = new byte[1 << 16];
    try (OutputStream out = Files.newOutputStream(file)) {
      long left = size;
      int at = 0;
      while (left > 0) {
        byte[] w =
            (words[rnd.nextInt(words.length)] + (rnd.nextInt(12) == 0 ? "\n" : " "))
                .getBytes(StandardCharsets.US_ASCII);
        for (byte b : w) {
          buf[at++] = b;
          if (at == buf.length || at == left) {
            out.write(buf, 0, at);
            left -= at;
            at = 0;
            if (left == 0) {
              break;
            }
          }
        }
      }
    }
  }

  @AfterAll
  static void tearDown() throws IOException {
    try {
      printTable();
    } finally {
      if (reg != null) {
        reg.close();
      }
    }
  }

  private static String blobUrl(Image i, Descriptor d) {
    return reg.url() + "/v2/" + i.repo() + "/blobs/" + d.digest();
  }

  /** One curl process downloading {@code blobs} into fresh files under work/curl-out. */
  private static String[] curl(Image i, List<Descriptor> blobs) {
    List<String> curl = new ArrayList<>(List.of("curl", "-sSf"));
    for (Descriptor d : blobs) {
      curl.addAll(
          List.of(
              blobUrl(i, d), "-o", work.resolve("curl-out").resolve(d.digest().hex()).toString()));
    }
    return curl.toArray(String[]::new);
  }

  /** Runs {@code curl}, timed, into an empty work/curl-out; adds wall and CPU seconds. */
  private static void runCurl(String[] curl, List<Double> wall, List<Double> cpu) throws Exception {
    Requirements.run("rm", "-rf", work.resolve("curl-out").toString());
    Files.createDirectories(work.resolve("curl-out"));
    Requirements.run("sync");
    long t0 = System.nanoTime();
    String out = Requirements.run(timed(curl));
    wall.add(seconds(t0));
    cpu.add(cpu(out));
  }

  @Test
  @Order(1)
  void standalonePrefetchAllVersusCurl() throws Exception {
    standalone(raw);
    standalone(zstd);
  }

  private void standalone(Image i) throws Exception {
    List<Descriptor> blobs = new ArrayList<>(i.img().allBlobs());
    blobs.addAll(i.img().chunkTables());
    long bytes = blobs.stream().mapToLong(Descriptor::size).sum();
    String[] curl = curl(i, blobs);
    List<Double> ours = new ArrayList<>();
    List<Double> peer = new ArrayList<>();
    List<Double> oursCpu = new ArrayList<>();
    List<Double> peerCpu = new ArrayList<>();
    List<Double> oursFetch = new ArrayList<>();
    Path cache = work.resolve("prefetch-cache");
    for (int run = 0; run < RUNS; run++) {
      Requirements.run("rm", "-rf", cache.toString());
      Requirements.run("sync");
      long t0 = System.nanoTime();
      String out = Requirements.run(timed(standaloneCommand(i, cache, null)));
      ours.add(seconds(t0));
      oursCpu.add(cpu(out));
      Matcher fm = Pattern.compile("fetched .* in ([0-9.]+) s").matcher(out);
      oursFetch.add(fm.find() ? Double.parseDouble(fm.group(1)) : Double.NaN);
      runCurl(curl, peer, peerCpu);
    }
    if (JFR != null) {
      Files.createDirectories(Path.of(JFR));
      Path rec = Path.of(JFR).resolve("standalone-" + i.name() + ".jfr").toAbsolutePath();
      Requirements.run("rm", "-rf", cache.toString());
      Requirements.run(standaloneCommand(i, cache, rec));
      System.out.println("JFR recording of one standalone prefetch (" + i.name() + "): " + rec);
    }
    double mb = bytes / 1048576.0;
    System.out.printf(
        Locale.ROOT,
        "%nprefetch --all (%s image) from docker-registry (loopback): %d blobs, %.0f MiB, %d"
            + " CPUs%n",
        i.name(),
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
    printLoad();
    ROWS.add(
        new Row(
            "`prefetch --standalone --all`, " + i.name(),
            "curl",
            1.0,
            ours,
            peer,
            oursCpu,
            peerCpu,
            bytes));
  }

  /**
   * The {@code lazypull} launcher of the release (src/main/dist/bin/lazypull) over the built jar
   * and this JDK: the command as users run it, with the JVM options the launcher picks for it.
   */
  private static List<String> launcher(String javaOpts) {
    List<String> cmd = new ArrayList<>(List.of("/usr/bin/env"));
    cmd.add("LAZYPULL_JAR=" + jar);
    cmd.add("LAZYPULL_JAVA=" + Path.of(System.getProperty("java.home"), "bin", "java"));
    cmd.add("LAZYPULL_JAVA_OPTS=" + (javaOpts == null ? "" : javaOpts));
    cmd.addAll(List.of("sh", VmHarness.baseDir().resolve("src/main/dist/bin/lazypull").toString()));
    return cmd;
  }

  private static String[] standaloneCommand(Image i, Path cache, Path jfr) {
    List<String> cmd =
        launcher(
            jfr == null ? null : "-XX:StartFlightRecording=filename=" + jfr + ",settings=profile");
    cmd.addAll(
        List.of(
            "prefetch",
            i.ref(),
            "--standalone",
            "--all",
            "--plain-http",
            "--config",
            toml.toString(),
            "--cache-dir",
            cache.toString()));
    return cmd.toArray(String[]::new);
  }

  @Test
  @Order(2)
  void throughTheDaemonVersusCurl() throws Exception {
    if (!Boolean.parseBoolean(System.getProperty("bench.daemon", "true"))) {
      System.out.println("daemon paths skipped (-Dbench.daemon=false)");
      return;
    }
    Requirements.requireRoot();
    Requirements.require(
        Requirements.run("cat", "/proc/filesystems").contains("erofs"), "EROFS in the host kernel");
    Path dir = work.resolve("daemon");
    Path socket = dir.resolve("run/lazypull.sock");
    Files.createDirectories(socket.getParent());
    Path log = dir.resolve("daemon.log");
    Process daemon =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-jar",
                jar.toString(),
                "daemon",
                "--frontend",
                "fanotify",
                "--cache-dir",
                dir.resolve("cache").toString(),
                "--state-dir",
                dir.resolve("state").toString(),
                "--socket",
                socket.toString(),
                "--plain-http",
                "--config",
                toml.toString())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    try {
      long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (!Files.readString(log).contains("INFO Daemon: ready:")) {
        if (!daemon.isAlive() || System.nanoTime() > end) {
          throw new AssertionError("the daemon did not start:\n" + Files.readString(log));
        }
        Thread.sleep(20);
      }
      daemonPaths(raw, daemon.pid(), socket, dir);
      daemonPaths(zstd, daemon.pid(), socket, dir);
    } finally {
      for (String m : List.of("mnt-raw", "mnt-zstd")) {
        Path mnt = dir.resolve(m);
        if (Requirements.run("cat", "/proc/self/mountinfo").contains(" " + mnt + " ")) {
          Requirements.run("umount", "-l", mnt.toString());
        }
      }
      daemon.destroy();
      if (!daemon.waitFor(60, TimeUnit.SECONDS)) {
        daemon.destroyForcibly();
      }
      // the daemon's fd keeper (its record is in the run directory), should it outlive the daemon
      try {
        String[] k =
            Files.readString(socket.getParent().resolve("keeper-fanotify")).trim().split(" ");
        ProcessHandle.of(Long.parseLong(k[0]))
            .filter(p -> p.info().commandLine().orElse("").contains("FdKeeper"))
            .ifPresent(ProcessHandle::destroyForcibly);
      } catch (IOException | RuntimeException e) {
        // no keeper recorded
      }
    }
  }

  private static void cli(Path socket, String... args) {
    List<String> a = new ArrayList<>(List.of(args));
    a.addAll(List.of("--socket", socket.toString()));
    CliRun.Result r = CliRun.run(a.toArray(String[]::new));
    if (r.code() != 0) {
      throw new AssertionError("lazypull " + a + " exited " + r.code() + ":\n" + r.err());
    }
  }

  /** Unmounts, evicts the image's cache files, and mounts it again: cold, nothing cached. */
  private static void remountCold(Image i, Path socket, Path mnt) throws Exception {
    if (Requirements.run("cat", "/proc/self/mountinfo").contains(" " + mnt + " ")) {
      cli(socket, "umount", mnt.toString());
      evict(i, socket);
    }
    Requirements.run("sync");
    Files.createDirectories(mnt);
    cli(socket, "mount", i.ref(), mnt.toString());
  }

  /** {@code lazypull evict}, again while the daemon still holds a file of the unmounted image. */
  private static void evict(Image i, Path socket) throws InterruptedException {
    for (int attempt = 0; ; attempt++) {
      CliRun.Result r = CliRun.run("evict", i.ref(), "--socket", socket.toString());
      if (r.code() == 0) {
        return;
      }
      if (attempt == 100) {
        throw new AssertionError("lazypull evict " + i.ref() + " exited " + r.code() + r.err());
      }
      Thread.sleep(100);
    }
  }

  private void daemonPaths(Image i, long daemonPid, Path socket, Path dir) throws Exception {
    Path mnt = dir.resolve("mnt-" + i.name());
    String[] curl = curl(i, i.img().blobs());
    List<Double> cli = new ArrayList<>();
    List<Double> cliCpu = new ArrayList<>();
    List<Double> clientCpu = new ArrayList<>();
    List<Double> ctl = new ArrayList<>();
    List<Double> ctlCpu = new ArrayList<>();
    List<Double> cat = new ArrayList<>();
    List<Double> catCpu = new ArrayList<>();
    List<Double> peer = new ArrayList<>();
    List<Double> peerCpu = new ArrayList<>();
    ControlClient control = new ControlClient(socket);
    for (int run = 0; run < RUNS; run++) {
      // the CLI command, as users run it
      remountCold(i, socket, mnt);
      double c0 = cpuSeconds(daemonPid);
      long t0 = System.nanoTime();
      String out =
          Requirements.run(
              timed(
                  Stream.concat(
                          launcher(null).stream(),
                          Stream.of(
                              "prefetch",
                              i.ref(),
                              "--all",
                              "--wait",
                              "--socket",
                              socket.toString()))
                      .toArray(String[]::new)));
      cli.add(seconds(t0));
      cliCpu.add(round2(cpuSeconds(daemonPid) - c0));
      clientCpu.add(cpu(out));
      // the same job over the control socket, polled every 10 ms: the daemon's own time
      remountCold(i, socket, mnt);
      c0 = cpuSeconds(daemonPid);
      t0 = System.nanoTime();
      control.call(ControlClient.request("prefetch").put("image", i.ref()));
      JsonNode s;
      do {
        Thread.sleep(10);
        s = control.call(ControlClient.request("prefetch-status").put("image", i.ref()));
      } while (s.path("running").asBoolean());
      ctl.add(seconds(t0));
      ctlCpu.add(round2(cpuSeconds(daemonPid) - c0));
      if (s.path("jobs").isEmpty()) {
        throw new AssertionError("no prefetch job in the daemon: " + s);
      }
      for (JsonNode job : s.path("jobs")) { // as `prefetch --wait` judges it, and all done
        if (job.path("failedBytes").asLong() != 0
            || job.has("error")
            || job.path("doneBytes").asLong() != job.path("plannedBytes").asLong()) {
          throw new AssertionError("prefetch through the daemon failed: " + s);
        }
      }
      // a cold sequential read through the mount
      remountCold(i, socket, mnt);
      c0 = cpuSeconds(daemonPid);
      t0 = System.nanoTime();
      Requirements.run("bash", "-c", "cat '" + mnt.resolve("big.bin") + "' >/dev/null");
      cat.add(seconds(t0));
      catCpu.add(round2(cpuSeconds(daemonPid) - c0));
      runCurl(curl, peer, peerCpu);
    }
    if (JFR != null) {
      remountCold(i, socket, mnt);
      Path rec = Path.of(JFR).resolve("daemon-prefetch-" + i.name() + ".jfr").toAbsolutePath();
      Files.createDirectories(rec.getParent());
      String pid = Long.toString(daemonPid);
      Requirements.run("jcmd", pid, "JFR.start", "name=bench", "settings=profile");
      cli(socket, "prefetch", i.ref(), "--all", "--wait");
      Requirements.run("jcmd", pid, "JFR.stop", "name=bench", "filename=" + rec);
      System.out.println("JFR recording of one daemon prefetch (" + i.name() + "): " + rec);
    }
    cli(socket, "umount", mnt.toString());
    evict(i, socket);
    long bytes = i.dataBytes();
    double mb = bytes / 1048576.0;
    System.out.printf(
        Locale.ROOT,
        "%nthrough the daemon (fanotify front end, %s image): data blob %.0f MiB%n",
        i.name(),
        mb);
    System.out.printf(
        Locale.ROOT,
        "  lazypull prefetch --all --wait (CLI) : median %.3f s = %5.0f MiB/s  (runs %s);"
            + " daemon CPU %s, client CPU %s%n",
        median(cli),
        mb / median(cli),
        cli,
        cliCpu,
        clientCpu);
    System.out.printf(
        Locale.ROOT,
        "  prefetch over the control socket     : median %.3f s = %5.0f MiB/s  (runs %s);"
            + " daemon CPU %s%n",
        median(ctl),
        mb / median(ctl),
        ctl,
        ctlCpu);
    System.out.printf(
        Locale.ROOT,
        "  cold cat of the file through the mount: median %.3f s = %5.0f MiB/s  (runs %s);"
            + " daemon CPU %s%n",
        median(cat),
        mb / median(cat),
        cat,
        catCpu);
    System.out.printf(
        Locale.ROOT,
        "  curl of the data blob                : median %.3f s = %5.0f MiB/s  (runs %s); CPU %s%n",
        median(peer),
        mb / median(peer),
        peer,
        peerCpu);
    printLoad();
    ROWS.add(
        new Row(
            "daemon: `prefetch --all --wait` (CLI), " + i.name(),
            "curl",
            1.5,
            cli,
            peer,
            cliCpu,
            peerCpu,
            bytes));
    ROWS.add(
        new Row(
            "daemon: prefetch job (control socket), " + i.name(),
            "curl",
            1.5,
            ctl,
            peer,
            ctlCpu,
            peerCpu,
            bytes));
    ROWS.add(
        new Row(
            "fanotify mount: cold `cat`, " + i.name(),
            "curl",
            1.0,
            cat,
            peer,
            catCpu,
            peerCpu,
            bytes));
  }

  @Test
  @Order(3)
  void nbdColdFromTheRegistryVersusNbdkitCurl() throws Exception {
    Descriptor blob = raw.img().blobs().get(0);
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
              raw.ref(),
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
        oursCpu.add(round2(cpuSeconds(p.pid()) - c0));
        p.stop();
      }
      Files.deleteIfExists(nbdkitSock);
      Process nbdkit =
          new ProcessBuilder(
                  "nbdkit",
                  "-f",
                  "-r",
                  "-U",
                  nbdkitSock.toString(),
                  "curl",
                  "url=" + blobUrl(raw, blob))
              .redirectErrorStream(true)
              .redirectOutput(work.resolve("nbdkit.log").toFile())
              .start();
      try {
        for (int i = 0; i < 500 && !Files.exists(nbdkitSock); i++) {
          Thread.sleep(10);
        }
        double c0 = cpuSeconds(nbdkit.pid());
        peer.add(copySeconds(nbdkitSock));
        peerCpu.add(round2(cpuSeconds(nbdkit.pid()) - c0));
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
              raw.ref(),
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
        "  ratio (lazypull / nbdkit curl throughput): %.2fx  (goal >= 3x)%n",
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
    printLoad();
    ROWS.add(
        new Row(
            "NBD cold: `nbdcopy` of `nbd --blob`, raw",
            "nbdkit curl",
            3.0,
            ours,
            peer,
            oursCpu,
            peerCpu,
            blob.size()));
  }

  /** Every path side by side, as a markdown table (medians). */
  private static void printTable() throws IOException {
    if (ROWS.isEmpty()) {
      return;
    }
    StringBuilder t = new StringBuilder();
    t.append(
        String.format(
            Locale.ROOT,
            "%nRegistryColdBench summary: %d MiB per image, %d runs each, medians, %d CPUs%n",
            mib,
            RUNS,
            Runtime.getRuntime().availableProcessors()));
    t.append(
        "| path | peer | MiB on the wire | lazypull s | peer s | ratio (goal) | lazypull CPU s"
            + " | peer CPU s | lazypull CPU s/GiB | peer CPU s/GiB | CPU per byte vs peer"
            + " (goal ≤ 2×) |\n");
    t.append("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (Row r : ROWS) {
      double gib = r.wireBytes() / (double) (1L << 30);
      double ratio = median(r.peerWall()) / median(r.ours());
      double cpuRatio = median(r.oursCpu()) / median(r.peerCpu());
      t.append(
          String.format(
              Locale.ROOT,
              "| %s | %s | %.0f | %.2f | %.2f | **%.2f×** (≥ %.1f×: %s) | %.2f | %.2f | %.2f |"
                  + " %.2f | **%.1f×** (%s) |%n",
              r.path(),
              r.peer(),
              r.wireBytes() / 1048576.0,
              median(r.ours()),
              median(r.peerWall()),
              ratio,
              r.goal(),
              ratio >= r.goal() ? "met" : "missed",
              median(r.oursCpu()),
              median(r.peerCpu()),
              median(r.oursCpu()) / gib,
              median(r.peerCpu()) / gib,
              cpuRatio,
              cpuRatio <= 2.0 ? "met" : "missed"));
    }
    t.append("load average at the end: ")
        .append(Files.readString(Path.of("/proc/loadavg")).trim())
        .append('\n');
    System.out.print(t);
    Files.writeString(work.resolve("summary.md"), t.toString());
  }

  private static void printLoad() throws IOException {
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
    return round2(Double.parseDouble(f[1]) + Double.parseDouble(f[2]));
  }

  /** utime + stime of a live process, from /proc/PID/stat (clock ticks of 1/100 s). */
  private static double cpuSeconds(long pid) throws IOException {
    String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0;
  }

  private static double round2(double x) {
    return Math.round(x * 100) / 100.0;
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

package dev.lazypull.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lazypull.fanotify.HostDaemon;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.LazyImage;
import dev.lazypull.testing.CliRun;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.RegistryImages;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The fanotify front end on this host's own kernel (issues 11 item 9, 15): the packaged daemon
 * ({@code daemon --frontend fanotify}, its cache on the root file system) serving images from
 * Debian's {@code docker-registry} on loopback, against the obvious peers:
 *
 * <ol>
 *   <li><b>cold sequential read</b> of one big file (random data, {@code -Dbench.mib=N}, default
 *       512) through a fresh lazy mount (new daemon and cache — the cache is by blob, shared by
 *       fsids — page cache dropped, the registry's storage read back into the page cache so both
 *       sides read the same warm storage) versus {@code curl -o /dev/null} (and {@code curl -o
 *       FILE}) of the same data blob from the same registry; images packed {@code --compression
 *       none} and zstd. Process CPU of the daemon (utime+stime deltas of /proc/PID/stat) and of
 *       curl, per GiB; goal ≥ 1.0x.
 *   <li><b>warm read</b> of the same file after drop_caches (the cache file is complete) versus the
 *       source file on the same file system; goal ≥ 0.9x.
 *   <li><b>daemon time per event</b>, from its {@code lazypull_read_duration_seconds} histogram:
 *       all events of the cold reads, and warm events (drop_caches on a file still partly missing,
 *       so still marked: every miss is an event the chunk map answers); goal p50 ≤ 30 µs, p99 ≤ 100
 *       µs.
 *   <li><b>java -version</b> from a fresh lazy mount of this machine's JDK 17 ({@code lazypull
 *       mount} as its own command, then {@code MNT/bin/java -version}) versus curl of every blob of
 *       the image and then {@code java -version} from a plain copy of the JDK (in the page cache,
 *       unpacking not counted: in the peer's favour); goal ≤ 0.25x.
 *   <li><b>scale</b>: {@code -Dbench.mounts=N} (default 1000) mounts of one image of N small files
 *       under their own fsids (the cache is by blob: they share its cache file), then one cold
 *       reader per mount at once, each reading a different file; errors, and the daemon's RSS; goal
 *       ≤ 256 MiB.
 * </ol>
 *
 * Runs alternate ours/peer so load drift hits both; medians are reported. One table at the end,
 * also written to {@code target/fanotify-bench.txt}. Run as root after {@code mvn package
 * -DskipTests}: {@code mvn -Pbench test -Dtest=FanotifyHostBench}; {@code -Dbench.runs=N} sets the
 * runs per figure (default 5); {@code -Dbench.daemonOpts="-Xmx..."} gives the daemons JVM options
 * (through JAVA_TOOL_OPTIONS; default none).
 */
@Tag("bench")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class FanotifyHostBench {
  private static final int RUNS = Integer.getInteger("bench.runs", 5);
  private static final double GIB = 1L << 30;
  private static final double MIB = 1L << 20;
  private static final Pattern BUCKET =
      Pattern.compile("lazypull_read_duration_seconds_bucket\\{le=\"([^\"]+)\"\\}");
  private static final Path JDK = Path.of("/usr/lib/jvm/java-17-openjdk-amd64");

  private static Path work;
  private static DockerRegistryFixture reg;
  private static Path toml;
  private static int mib;
  private static final List<HostDaemon> daemons = new ArrayList<>();
  private static final List<String[]> rows = new ArrayList<>();
  private static final List<String> notes = new ArrayList<>();

  /** Cold-read events of every cold run (both compressions), as bucket deltas. */
  private static final TreeMap<Double, Double> coldEvents = new TreeMap<>();

  private static double coldEventSum;

  @BeforeAll
  static void setUp() throws Exception {
    mib = Integer.getInteger("bench.mib", 512);
    work = VmHarness.baseDir().resolve("target/bench-work/fanotify");
    Requirements.run("rm", "-rf", work.toString());
    Files.createDirectories(work);
    HostDaemon.requireHost(work);
    for (String tool : List.of("curl", "dd", "cp", "cmp", "time")) {
      Requirements.requireTool(tool);
    }
    reg = DockerRegistryFixture.builder(work.resolve("registry")).start();
    toml = RegistryImages.config(work.resolve("conf"), null);
    notes.add(
        String.format(
            Locale.ROOT,
            "kernel %s, %d CPUs, work dir %s on %s, runs per figure %d, daemon JVM options %s,"
                + " load average at start: %s",
            Requirements.run("uname", "-r").trim(),
            Runtime.getRuntime().availableProcessors(),
            work,
            Requirements.run("stat", "-f", "-c", "%T", work.toString()).trim(),
            RUNS,
            System.getProperty("bench.daemonOpts", "(none: JVM defaults)"),
            loadAvg()));
  }

  @AfterAll
  static void tearDown() throws IOException {
    for (HostDaemon d : daemons) {
      d.cleanUp();
    }
    if (reg != null) {
      reg.close();
    }
    notes.add("load average at the end: " + loadAvg());
    String table = table();
    System.out.println();
    System.out.println(table);
    Files.writeString(
        VmHarness.baseDir().resolve("target/fanotify-bench.txt"), table, StandardCharsets.UTF_8);
  }

  // ---------------------------------------------------------------- 1-3: cold, warm, per event

  @Test
  @Order(1)
  void coldAndWarmSequentialReadRaw() throws Exception {
    coldAndWarm("none");
  }

  @Test
  @Order(2)
  void coldAndWarmSequentialReadZstd() throws Exception {
    coldAndWarm("zstd");
  }

  private static void coldAndWarm(String compression) throws Exception {
    Path tree = Files.createDirectories(work.resolve("big-tree-" + compression));
    Path big = tree.resolve("big.bin");
    TestTrees.write(big, (long) mib << 20, new Random(compression.hashCode()));
    String ref = reg.host() + "/bench/big-" + compression + ":v1";
    LazyImage img =
        RegistryImages.packAndPush(
            tree, ref, toml, work.resolve("scratch"), "--compression", compression);
    Descriptor blob = img.blobs().get(0);
    String url = reg.url() + "/v2/bench/big-" + compression + "/blobs/" + blob.digest();
    double gib = ((long) mib << 20) / GIB;
    List<Double> ours = new ArrayList<>();
    List<Double> curlNull = new ArrayList<>();
    List<Double> curlFile = new ArrayList<>();
    List<Double> oursCpu = new ArrayList<>();
    List<Double> oursSys = new ArrayList<>();
    List<Double> curlCpu = new ArrayList<>();
    List<Double> warm = new ArrayList<>();
    List<Double> plain = new ArrayList<>();
    List<Double> mountMs = new ArrayList<>();
    for (int run = 0; run < RUNS; run++) {
      HostDaemon d = daemon("cold-" + compression + "-" + run);
      try {
        Path mnt = d.root.resolve("mnt");
        long m0 = System.nanoTime();
        d.mount(ref, mnt);
        mountMs.add((double) Math.round((System.nanoTime() - m0) / 1e6));
        dropCachesWarmRegistry();
        TreeMap<Double, Double> h0 = buckets(d);
        double s0 = d.metric("lazypull_read_duration_seconds_sum");
        double c0 = cpuSeconds(d.process().pid());
        double sys0 = sysSeconds(d.process().pid());
        long t0 = System.nanoTime();
        dd(mnt.resolve("big.bin"), 0);
        ours.add(seconds(t0));
        oursCpu.add(round2(cpuSeconds(d.process().pid()) - c0));
        oursSys.add(round2(sysSeconds(d.process().pid()) - sys0));
        addDelta(coldEvents, h0, buckets(d));
        coldEventSum += d.metric("lazypull_read_duration_seconds_sum") - s0;
        if (run == 0) { // once: the bytes are right
          Requirements.run("cmp", mnt.resolve("big.bin").toString(), big.toString());
        }
        // warm: the cache file is complete (unmarked); the page cache dropped
        dropCaches();
        t0 = System.nanoTime();
        dd(mnt.resolve("big.bin"), 0);
        warm.add(seconds(t0));
        d.umount(mnt);
      } finally {
        finish(d);
      }
      dropCaches();
      long t0 = System.nanoTime();
      dd(big, 0);
      plain.add(seconds(t0));

      dropCachesWarmRegistry();
      t0 = System.nanoTime();
      String out = Requirements.run(timed("curl", "-sSf", "-o", "/dev/null", url));
      curlNull.add(seconds(t0));
      curlCpu.add(cpu(out));
      dropCachesWarmRegistry();
      Path file = work.resolve("curl.out");
      t0 = System.nanoTime();
      Requirements.run("curl", "-sSf", "-o", file.toString(), url);
      curlFile.add(seconds(t0));
      Files.delete(file);
    }
    String what = "--compression " + compression + ", " + mib + " MiB file";
    double mibs = mib;
    row(
        "1. cold sequential read, " + what + " (s; MiB/s)",
        String.format(Locale.ROOT, "%.2f s = %.0f MiB/s", median(ours), mibs / median(ours)),
        String.format(
            Locale.ROOT,
            "curl -o /dev/null %.2f s = %.0f MiB/s",
            median(curlNull),
            mibs / median(curlNull)),
        median(curlNull) / median(ours),
        ">= 1.0x",
        median(curlNull) / median(ours) >= 1.0);
    row(
        "   same, peer curl -o FILE (writes a file, as we do)",
        "",
        String.format(
            Locale.ROOT,
            "curl -o FILE %.2f s = %.0f MiB/s",
            median(curlFile),
            mibs / median(curlFile)),
        median(curlFile) / median(ours),
        "",
        null);
    row(
        "   process CPU per GiB read (daemon vs curl)",
        String.format(Locale.ROOT, "%.2f CPU-s/GiB", median(oursCpu) / gib),
        String.format(Locale.ROOT, "%.2f CPU-s/GiB", median(curlCpu) / gib),
        median(curlCpu) / median(oursCpu),
        "",
        null);
    row(
        "2. warm read after drop_caches, " + what,
        String.format(Locale.ROOT, "%.2f s = %.0f MiB/s", median(warm), mibs / median(warm)),
        String.format(
            Locale.ROOT, "ext4 file %.2f s = %.0f MiB/s", median(plain), mibs / median(plain)),
        median(plain) / median(warm),
        ">= 0.9x",
        median(plain) / median(warm) >= 0.9);
    notes.add(
        String.format(
            Locale.ROOT,
            "%s: blob %.1f MiB; runs: cold %s, curl -o /dev/null %s, curl -o FILE %s, warm %s,"
                + " ext4 %s; daemon CPU s %s (of which system %s), curl CPU s %s; `lazypull mount`"
                + " (in the test JVM)"
                + " ms %s",
            what,
            blob.size() / MIB,
            ours,
            curlNull,
            curlFile,
            warm,
            plain,
            oursCpu,
            oursSys,
            curlCpu,
            mountMs));
  }

  @Test
  @Order(3)
  void daemonTimePerEvent() throws Exception {
    // cold: every event of the cold sequential reads above (answers after a fetch, and answers
    // at once where read-ahead already brought the range)
    if (!coldEvents.isEmpty()) {
      double n = total(coldEvents);
      row(
          "3. daemon time per event, cold reads (" + (long) n + " events)",
          String.format(
              Locale.ROOT,
              "p50 <= %s, p99 <= %s, mean %.0f us",
              micros(quantile(coldEvents, 0.5)),
              micros(quantile(coldEvents, 0.99)),
              coldEventSum / n * 1e6),
          "",
          Double.NaN,
          "(none)",
          null);
    }
    // warm: a file still partly missing stays marked; after drop_caches every page-cache miss of
    // its present part is an event the chunk map answers at once
    String compression = "none";
    String ref = reg.host() + "/bench/big-" + compression + ":v1";
    HostDaemon d = daemon("events");
    TreeMap<Double, Double> warm = new TreeMap<>();
    double warmSum = 0;
    try {
      Path mnt = d.root.resolve("mnt");
      d.mount(ref, mnt);
      int part = Math.max(1, Math.min(64, mib / 4));
      dd(mnt.resolve("big.bin"), part);
      awaitFetchesDone(d);
      for (int run = 0; run < RUNS; run++) {
        dropCaches();
        TreeMap<Double, Double> h0 = buckets(d);
        double s0 = d.metric("lazypull_read_duration_seconds_sum");
        double fetched = d.metric("lazypull_fetched_bytes_total");
        dd(mnt.resolve("big.bin"), part);
        addDelta(warm, h0, buckets(d));
        warmSum += d.metric("lazypull_read_duration_seconds_sum") - s0;
        assertEquals(
            fetched, d.metric("lazypull_fetched_bytes_total"), "the warm read fetched nothing");
      }
      d.umount(mnt);
    } finally {
      finish(d);
    }
    double n = total(warm);
    double p50 = quantile(warm, 0.5);
    double p99 = quantile(warm, 0.99);
    row(
        "3. daemon time per event, warm (range present; " + (long) n + " events)",
        String.format(
            Locale.ROOT,
            "p50 <= %s, p99 <= %s, mean %.1f us",
            micros(p50),
            micros(p99),
            warmSum / n * 1e6),
        "",
        Double.NaN,
        "p50 <= 30 us, p99 <= 100 us",
        p50 <= 30e-6 && p99 <= 100e-6);
    notes.add("warm event buckets (le seconds -> count): " + warm);
    notes.add("cold event buckets (le seconds -> count): " + coldEvents);
  }

  // ---------------------------------------------------------------- 4: java -version

  @Test
  @Order(4)
  void javaVersionFromALazyMountVersusAWholePull() throws Exception {
    Requirements.require(Files.isDirectory(JDK), JDK + " (openjdk-17-jdk-headless)");
    String ref = reg.host() + "/bench/jdk:17";
    LazyImage img = RegistryImages.packAndPush(JDK, ref, toml, work.resolve("scratch"));
    List<Descriptor> blobs = new ArrayList<>(img.allBlobs());
    blobs.addAll(img.chunkTables());
    long imageBytes = blobs.stream().mapToLong(Descriptor::size).sum();
    Path copy = work.resolve("jdk-copy");
    Requirements.run("cp", "-a", JDK.toString(), copy.toString());
    Path curlOut = work.resolve("curl-jdk");
    List<String> curl = new ArrayList<>(List.of("curl", "-sSf"));
    for (Descriptor b : blobs) {
      curl.addAll(
          List.of(
              reg.url() + "/v2/bench/jdk/blobs/" + b.digest(),
              "-o",
              curlOut.resolve(b.digest().hex()).toString()));
    }
    String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<Double> lazy = new ArrayList<>();
    List<Double> mountPart = new ArrayList<>();
    List<Double> whole = new ArrayList<>();
    List<Double> curlPart = new ArrayList<>();
    List<Double> fetchedMib = new ArrayList<>();
    for (int run = 0; run < RUNS; run++) {
      HostDaemon d = daemon("jdk-" + run);
      try {
        Path mnt = Files.createDirectories(d.root.resolve("mnt"));
        dropCachesWarmRegistry();
        long served = reg.blobBytesServed();
        long t0 = System.nanoTime();
        Requirements.run(
            javaBin,
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-jar",
            HostDaemon.jar().toString(),
            "mount",
            "--socket",
            d.socket.toString(),
            ref,
            mnt.toString());
        long t1 = System.nanoTime();
        String v = Requirements.run("timeout", "-s", "KILL", "120", mnt + "/bin/java", "-version");
        lazy.add(seconds(t0));
        mountPart.add(Math.round((t1 - t0) / 1e6) / 1e3);
        fetchedMib.add(Math.round((reg.blobBytesServed() - served) / MIB * 10) / 10.0);
        if (run == 0) {
          notes.add("java -version from the lazy mount: " + v.lines().findFirst().orElse(""));
        }
        d.umount(mnt);
      } finally {
        finish(d);
      }
      Requirements.run("rm", "-rf", curlOut.toString());
      Files.createDirectories(curlOut);
      dropCachesWarmRegistry();
      // in the peer's favour: the unpacked tree in the page cache, as right after an unpack (whose
      // time is not counted)
      Requirements.run("bash", "-c", "find '" + copy + "' -type f -exec cat {} + >/dev/null");
      long t0 = System.nanoTime();
      Requirements.run(curl.toArray(String[]::new));
      long t1 = System.nanoTime();
      Requirements.run(copy + "/bin/java", "-version");
      whole.add(seconds(t0));
      curlPart.add(Math.round((t1 - t0) / 1e6) / 1e3);
    }
    row(
        "4. java -version, JDK 17 image (" + Math.round(imageBytes / MIB) + " MiB in the registry)",
        String.format(
            Locale.ROOT,
            "%.2f s (mount %.2f s + java; %.1f MiB fetched)",
            median(lazy),
            median(mountPart),
            median(fetchedMib)),
        String.format(
            Locale.ROOT,
            "%.2f s (curl all blobs %.2f s + java from a copy)",
            median(whole),
            median(curlPart)),
        median(lazy) / median(whole),
        "<= 0.25x",
        median(lazy) / median(whole) <= 0.25);
    notes.add(
        String.format(
            Locale.ROOT,
            "java -version runs: lazy (own-JVM `lazypull mount` + java) %s, of which mount %s;"
                + " whole pull (curl of %d blobs + java from a plain copy in the page cache, no unpacking"
                + " counted)"
                + " %s, of which curl %s; registry bytes per lazy run MiB %s",
            lazy,
            mountPart,
            blobs.size(),
            whole,
            curlPart,
            fetchedMib));
  }

  // ---------------------------------------------------------------- 5: scale

  @Test
  @Order(5)
  void manyMountsAndManyConcurrentColdReaders() throws Exception {
    int want = Integer.getInteger("bench.mounts", 1000);
    // one file per reader, all different: the mounts share the image's cache file (the cache is by
    // blob), so each reader's range is its own and cold
    int files = want;
    int fileBytes = 64 << 10;
    Path tree = Files.createDirectories(work.resolve("small-tree"));
    byte[][] data = new byte[files][];
    for (int f = 0; f < files; f++) {
      TestTrees.write(tree.resolve("f" + f + ".bin"), fileBytes, new Random(100 + f));
      data[f] = Files.readAllBytes(tree.resolve("f" + f + ".bin"));
    }
    String ref = reg.host() + "/bench/small:v1";
    RegistryImages.packAndPush(tree, ref, toml, work.resolve("scratch"));
    HostDaemon d = daemon("scale");
    long pid = d.process().pid();
    List<Path> mounts = new ArrayList<>();
    String mountError = null;
    long t0 = System.nanoTime();
    try {
      for (int i = 0; i < want; i++) {
        Path mnt = Files.createDirectories(d.root.resolve("m/" + i));
        CliRun.Result r = d.cli("mount", "--fsid", "bench" + i, ref, mnt.toString());
        if (r.code() != 0) {
          mountError = "mount " + i + " failed: " + r.err().strip();
          break;
        }
        mounts.add(mnt);
      }
      double mountSeconds = seconds(t0);
      long rssMounted = procStatusKib(pid, "VmRSS");
      // one cold reader per mount, all at once
      int n = mounts.size();
      AtomicInteger errors = new AtomicInteger();
      AtomicInteger wrong = new AtomicInteger();
      List<String> firstErrors = Collections.synchronizedList(new ArrayList<>());
      CountDownLatch go = new CountDownLatch(1);
      List<Thread> readers = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        int f = i % files;
        Path file = mounts.get(i).resolve("f" + f + ".bin");
        Thread t =
            new Thread(
                () -> {
                  try {
                    go.await();
                    if (!Arrays.equals(Files.readAllBytes(file), data[f])) {
                      wrong.incrementAndGet();
                    }
                  } catch (Exception e) {
                    errors.incrementAndGet();
                    if (firstErrors.size() < 3) {
                      firstErrors.add(file + ": " + e);
                    }
                  }
                },
                "reader-" + i);
        t.setDaemon(true);
        t.start();
        readers.add(t);
      }
      dropCaches();
      long r0 = System.nanoTime();
      go.countDown();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(300);
      int hung = 0;
      for (Thread t : readers) {
        t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
        if (t.isAlive()) {
          hung++;
        }
      }
      double readSeconds = seconds(r0);
      long rssAfter = procStatusKib(pid, "VmRSS");
      long hwm = procStatusKib(pid, "VmHWM");
      boolean alive = d.isAlive();
      row(
          "5. " + n + " mounts of one small image (own fsids)" + (n < want ? " of " + want : ""),
          String.format(
              Locale.ROOT,
              "%.1f s to mount (%.0f ms each), RSS %.0f MiB",
              mountSeconds,
              mountSeconds * 1000 / Math.max(1, n),
              rssMounted / 1024.0),
          "",
          Double.NaN,
          "all mount",
          n == want);
      row(
          "5. " + n + " concurrent cold readers (a different 64 KiB file each)",
          String.format(
              Locale.ROOT,
              "%.2f s, %d errors, %d wrong, %d hung; RSS %.0f MiB (peak %.0f)",
              readSeconds,
              errors.get(),
              wrong.get(),
              hung,
              rssAfter / 1024.0,
              hwm / 1024.0),
          "",
          Double.NaN,
          "0 errors, RSS <= 256 MiB",
          errors.get() == 0 && wrong.get() == 0 && hung == 0 && alive && hwm <= 256 * 1024);
      if (mountError != null) {
        notes.add(mountError);
      }
      if (!firstErrors.isEmpty()) {
        notes.add("reader errors: " + firstErrors);
      }
      notes.add(
          String.format(
              Locale.ROOT,
              "scale: daemon threads %s, fds %d after the readers",
              procStatus(pid, "Threads"),
              fdCount(pid)));
      // unmount everything the way an operator does
      long u0 = System.nanoTime();
      int umountErrors = 0;
      for (Path m : mounts) {
        if (d.cli("umount", m.toString()).code() != 0) {
          umountErrors++;
        }
      }
      notes.add(
          String.format(
              Locale.ROOT,
              "scale: %d umounts in %.1f s, %d failed; mounts left %d",
              mounts.size(),
              seconds(u0),
              umountErrors,
              d.mountsUnderWork().size()));
    } finally {
      finish(d);
    }
  }

  // ---------------------------------------------------------------- helpers

  private static HostDaemon daemon(String name) throws Exception {
    Path root = work.resolve(name);
    Requirements.run("rm", "-rf", root.toString());
    String opts = System.getProperty("bench.daemonOpts", "").trim();
    HostDaemon d =
        opts.isEmpty()
            ? HostDaemon.in(root, toml, "--read-timeout", "120s")
            : HostDaemon.under(
                root, toml, List.of("env", "JAVA_TOOL_OPTIONS=" + opts), "--read-timeout", "120s");
    daemons.add(d);
    return d.start();
  }

  /** Stops the daemon, detaching whatever is left mounted, and frees its cache. */
  private static void finish(HostDaemon d) throws Exception {
    d.cleanUp();
    daemons.remove(d);
    Requirements.run("rm", "-rf", d.root.toString());
  }

  private static void dropCaches() throws IOException, InterruptedException {
    Requirements.run("sync");
    Files.writeString(Path.of("/proc/sys/vm/drop_caches"), "3");
  }

  /**
   * drop_caches, then the registry's blob files back into the page cache: both sides read the same
   * warm registry storage, neither has the result in its page cache.
   */
  private static void dropCachesWarmRegistry() throws IOException, InterruptedException {
    dropCaches();
    Requirements.run(
        "bash",
        "-c",
        "find '" + work.resolve("registry/storage") + "' -name data -exec cat {} + >/dev/null");
  }

  /** dd of a file (the first {@code mib} MiB, or all when 0) to /dev/null, under a time limit. */
  private static void dd(Path file, int mib) throws IOException, InterruptedException {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                "timeout",
                "-s",
                "KILL",
                "300",
                "dd",
                "if=" + file,
                "of=/dev/null",
                "bs=1M",
                "status=none"));
    if (mib > 0) {
      cmd.add("count=" + mib);
    }
    Requirements.run(cmd.toArray(String[]::new));
  }

  private static void awaitFetchesDone(HostDaemon d) throws Exception {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < end) {
      Map<String, Double> m = d.metrics();
      if (m.get("lazypull_fetches_total")
          == m.get("lazypull_fetch_duration_seconds_count")
              + m.get("lazypull_fetch_failures_total")) {
        return;
      }
      Thread.sleep(50);
    }
    throw new AssertionError("the daemon's fetches did not end");
  }

  /** Cumulative counts of the read latency histogram, by upper bound (seconds; +Inf last). */
  private static TreeMap<Double, Double> buckets(HostDaemon d) throws IOException {
    TreeMap<Double, Double> out = new TreeMap<>();
    d.metrics()
        .forEach(
            (k, v) -> {
              Matcher m = BUCKET.matcher(k);
              if (m.matches()) {
                out.put(
                    m.group(1).equals("+Inf")
                        ? Double.POSITIVE_INFINITY
                        : Double.parseDouble(m.group(1)),
                    v);
              }
            });
    return out;
  }

  private static void addDelta(
      TreeMap<Double, Double> into, TreeMap<Double, Double> before, TreeMap<Double, Double> after) {
    after.forEach((le, c) -> into.merge(le, c - before.getOrDefault(le, 0.0), Double::sum));
  }

  private static double total(TreeMap<Double, Double> cumulative) {
    return cumulative.lastEntry().getValue();
  }

  /** The smallest bucket bound under which fraction {@code q} of the events fall. */
  private static double quantile(TreeMap<Double, Double> cumulative, double q) {
    double total = total(cumulative);
    for (var e : cumulative.entrySet()) {
      if (e.getValue() >= q * total) {
        return e.getKey();
      }
    }
    return Double.POSITIVE_INFINITY;
  }

  private static String micros(double seconds) {
    return Double.isInfinite(seconds)
        ? "+Inf"
        : seconds < 0.001
            ? String.format(Locale.ROOT, "%.0f us", seconds * 1e6)
            : String.format(Locale.ROOT, "%.1f ms", seconds * 1e3);
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

  /** stime of a live process, from /proc/PID/stat. */
  private static double sysSeconds(long pid) throws IOException {
    String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    return Long.parseLong(f[12]) / 100.0;
  }

  private static String procStatus(long pid, String key) throws IOException {
    return Files.readAllLines(Path.of("/proc", Long.toString(pid), "status")).stream()
        .filter(l -> l.startsWith(key + ":"))
        .map(l -> l.substring(key.length() + 1).trim())
        .findFirst()
        .orElse("?");
  }

  private static long procStatusKib(long pid, String key) throws IOException {
    return Long.parseLong(procStatus(pid, key).split("\\s+")[0]);
  }

  private static long fdCount(long pid) throws IOException {
    try (var s = Files.list(Path.of("/proc", Long.toString(pid), "fd"))) {
      return s.count();
    }
  }

  private static String loadAvg() {
    try {
      return Files.readString(Path.of("/proc/loadavg")).trim();
    } catch (IOException e) {
      return "?";
    }
  }

  private static double round2(double x) {
    return Math.round(x * 100) / 100.0;
  }

  private static double seconds(long t0) {
    return Math.round((System.nanoTime() - t0) / 1e6) / 1e3;
  }

  private static double median(List<Double> xs) {
    List<Double> s = new ArrayList<>(xs);
    Collections.sort(s);
    return s.get(s.size() / 2);
  }

  /** A table row; {@code ratio} NaN for none, {@code met} null when there is no goal. */
  private static void row(
      String figure, String ours, String peer, double ratio, String goal, Boolean met) {
    rows.add(
        new String[] {
          figure,
          ours,
          peer,
          Double.isNaN(ratio) ? "" : String.format(Locale.ROOT, "%.2fx", ratio),
          goal,
          met == null ? "" : met ? "met" : "MISSED"
        });
  }

  private static String table() {
    String[] head = {"figure", "lazypull (fanotify)", "peer", "ratio", "goal", ""};
    int[] w = new int[head.length];
    List<String[]> all = new ArrayList<>();
    all.add(head);
    all.addAll(rows);
    for (String[] r : all) {
      for (int i = 0; i < r.length; i++) {
        w[i] = Math.max(w[i], r[i].length());
      }
    }
    StringBuilder sb = new StringBuilder();
    sb.append("fanotify front end on the host kernel (FanotifyHostBench; medians of ")
        .append(RUNS)
        .append(" runs)\n");
    for (int k = 0; k < all.size(); k++) {
      String[] r = all.get(k);
      StringBuilder line = new StringBuilder("|");
      for (int i = 0; i < r.length; i++) {
        line.append(' ').append(String.format("%-" + w[i] + "s", r[i])).append(" |");
      }
      sb.append(line).append('\n');
      if (k == 0) {
        StringBuilder sep = new StringBuilder("|");
        for (int x : w) {
          sep.append("-".repeat(x + 2)).append('|');
        }
        sb.append(sep).append('\n');
      }
    }
    for (String n : notes) {
      sb.append("- ").append(n).append('\n');
    }
    return sb.toString();
  }
}

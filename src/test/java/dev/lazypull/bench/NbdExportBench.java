package dev.lazypull.bench;

import dev.lazypull.cli.Main;
import dev.lazypull.testing.LazypullProcess;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.VmHarness;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@code nbdcopy} of the whole flattened export through {@code lazypull nbd} (the packaged jar)
 * versus {@code nbdkit file} serving the same bytes (the flattened image as a file), in one run,
 * over unix sockets:
 *
 * <ul>
 *   <li>warm: our cache already holds every chunk (both sides read from the page cache); goal ≥
 *       0.9x;
 *   <li>cold: a fresh cache filled from the OCI layout (a local file source; a registry source
 *       comes with the registry client).
 * </ul>
 *
 * Run after {@code mvn package -DskipTests} (it uses target/lazypull.jar): {@code mvn -Pbench test
 * -Dtest=NbdExportBench}; {@code -Dnbd.bench.mib=N} sets the data size (default 512).
 */
@Tag("bench")
class NbdExportBench {
  private static final int RUNS = 7;

  @Test
  void warmAndColdNbdcopyVersusNbdkitFile() throws Exception {
    for (String tool : new String[] {"mkfs.erofs", "nbdcopy", "nbdkit"}) {
      Requirements.requireTool(tool);
    }
    int mib = Integer.getInteger("nbd.bench.mib", 512);
    Path jar = VmHarness.jar();
    Path work = VmHarness.baseDir().resolve("target/bench-work/nbd-" + mib);
    String layout = "oci:" + work.resolve("layout") + ":bench";
    if (!Files.exists(work.resolve("flat.img"))) {
      Files.createDirectories(work);
      Path tree = Files.createDirectories(work.resolve("tree"));
      write(tree.resolve("big.bin"), (long) mib << 20, 1);
      Requirements.run(
          "mkfs.erofs",
          "--quiet",
          "-T0",
          "--chunksize=1048576",
          "--blobdev=" + work.resolve("bench.blob"),
          work.resolve("bench.erofs").toString(),
          tree.toString());
      if (Main.run(
              "import",
              work.resolve("bench.erofs").toString(),
              work.resolve("bench.blob").toString(),
              "--output",
              layout)
          != 0) {
        throw new AssertionError("import failed");
      }
      // The same bytes for nbdkit: our export copied to a file (NbdClientsIT checks it equals an
      // independent
      // flattening), kept sparse so nbdkit reports the same holes.
      Path cache = work.resolve("cache-build");
      try (LazypullProcess p =
          LazypullProcess.start(
              jar,
              work.resolve("build"),
              "nbd",
              layout,
              "--listen",
              "unix:" + work.resolve("build.sock"),
              "--cache-dir",
              cache.toString())) {
        p.awaitLine("serving", 60);
        Requirements.run(
            "nbdcopy", uri(work.resolve("build.sock")), work.resolve("flat.img").toString());
        p.stop();
      }
      Requirements.run("rm", "-rf", cache.toString());
    }
    long bytes = Files.size(work.resolve("flat.img"));
    Requirements.run(
        "bash",
        "-c",
        "cat '"
            + work.resolve("flat.img")
            + "' '"
            + work.resolve("bench.blob")
            + "' >/dev/null"); // both sources in the page cache before anything is timed

    Path nbdkitSock = work.resolve("nbdkit.sock");
    Files.deleteIfExists(nbdkitSock);
    Process nbdkit =
        new ProcessBuilder(
                "nbdkit",
                "-f",
                "-r",
                "-U",
                nbdkitSock.toString(),
                "file",
                "file=" + work.resolve("flat.img"))
            .redirectErrorStream(true)
            .redirectOutput(work.resolve("nbdkit.log").toFile())
            .start();
    List<Double> cold = new ArrayList<>();
    List<Double> warm = new ArrayList<>();
    List<Double> peer = new ArrayList<>();
    List<Double> coldCpu = new ArrayList<>();
    List<Double> warmCpu = new ArrayList<>();
    List<Double> peerCpu = new ArrayList<>();
    try {
      waitFor(nbdkitSock);
      for (int run = 0; run < 3; run++) {
        Path cache = work.resolve("cache-cold");
        Requirements.run("rm", "-rf", cache.toString());
        Requirements.run(
            "sync"); // the previous run's cache writes must not be flushed during this one
        try (LazypullProcess p = serve(jar, work, layout, cache)) {
          double c0 = cpuSeconds(p.pid());
          cold.add(copySeconds(work.resolve("ours.sock")));
          coldCpu.add(round(cpuSeconds(p.pid()) - c0));
          p.stop();
        }
      }
      Path cache = work.resolve("cache-cold"); // full after the last cold run
      try (LazypullProcess p = serve(jar, work, layout, cache)) {
        copySeconds(work.resolve("ours.sock")); // JIT warm-up
        copySeconds(nbdkitSock);
        Requirements.run("sync");
        for (int i = 0; i < RUNS; i++) { // interleaved, so drift affects both sides alike
          double c0 = cpuSeconds(p.pid());
          warm.add(copySeconds(work.resolve("ours.sock")));
          warmCpu.add(round(cpuSeconds(p.pid()) - c0));
          c0 = cpuSeconds(nbdkit.pid());
          peer.add(copySeconds(nbdkitSock));
          peerCpu.add(round(cpuSeconds(nbdkit.pid()) - c0));
        }
        if (p.stop().get("bytesFetched") != 0) {
          throw new AssertionError("the warm runs fetched data");
        }
      }
    } finally {
      nbdkit.destroy();
      nbdkit.waitFor(10, TimeUnit.SECONDS);
    }
    double mb = bytes / 1048576.0;
    System.out.printf(
        Locale.ROOT,
        "%nNBD export benchmark: nbdcopy of %.0f MiB (flattened, %d CPUs)%n",
        mb,
        Runtime.getRuntime().availableProcessors());
    System.out.printf(
        Locale.ROOT,
        "  warm  lazypull nbd : median %.3f s = %6.0f MiB/s  (runs %s)%n",
        median(warm),
        mb / median(warm),
        warm);
    System.out.printf(
        Locale.ROOT,
        "  warm  nbdkit file  : median %.3f s = %6.0f MiB/s  (runs %s)%n",
        median(peer),
        mb / median(peer),
        peer);
    System.out.printf(
        Locale.ROOT,
        "  warm ratio (lazypull / nbdkit throughput): %.2fx  (goal >= 0.9x)%n",
        median(peer) / median(warm));
    System.out.printf(
        Locale.ROOT,
        "  server CPU per copy: lazypull median %.2f s %s, nbdkit median %.2f s %s; "
            + "nbdkit/lazypull %.2fx%n",
        median(warmCpu),
        warmCpu,
        median(peerCpu),
        peerCpu,
        median(peerCpu) / median(warmCpu));
    System.out.printf(
        Locale.ROOT,
        "  cold  lazypull nbd from the OCI layout: median %.3f s = %6.0f MiB/s (runs %s);"
            + " %.2fx of nbdkit file; server CPU median %.2f s %s%n",
        median(cold),
        mb / median(cold),
        cold,
        median(peer) / median(cold),
        median(coldCpu),
        coldCpu);
  }

  private static LazypullProcess serve(Path jar, Path work, String layout, Path cache)
      throws Exception {
    LazypullProcess p =
        LazypullProcess.start(
            jar,
            work.resolve("ours"),
            "nbd",
            layout,
            "--listen",
            "unix:" + work.resolve("ours.sock"),
            "--cache-dir",
            cache.toString(),
            "--log-level",
            "warn");
    p.awaitLine("serving", 60);
    return p;
  }

  private static String uri(Path socket) {
    return "nbd+unix:///?socket=" + socket;
  }

  private static double copySeconds(Path socket) throws Exception {
    long t0 = System.nanoTime();
    Requirements.run("nbdcopy", uri(socket), "null:");
    return Math.round((System.nanoTime() - t0) / 1e6) / 1e3;
  }

  /** utime + stime of a process, from /proc/PID/stat (clock ticks of 1/100 s on Linux). */
  private static double cpuSeconds(long pid) throws IOException {
    String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0;
  }

  private static double round(double x) {
    return Math.round(x * 100) / 100.0;
  }

  private static double median(List<Double> xs) {
    List<Double> s = new ArrayList<>(xs);
    Collections.sort(s);
    return s.get(s.size() / 2);
  }

  private static void waitFor(Path socket) throws InterruptedException {
    for (int i = 0; i < 500 && !Files.exists(socket); i++) {
      Thread.sleep(10);
    }
  }

  private static void write(Path file, long size, long seed) throws IOException {
    Random rnd = new Random(seed);
    byte[] buf = new byte[1 << 20];
    try (OutputStream out = Files.newOutputStream(file)) {
      for (long left = size; left > 0; left -= buf.length) {
        rnd.nextBytes(buf);
        out.write(buf, 0, (int) Math.min(buf.length, left));
      }
    }
  }
}

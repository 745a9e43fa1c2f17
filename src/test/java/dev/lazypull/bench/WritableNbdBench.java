package dev.lazypull.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.cli.Main;
import dev.lazypull.control.ControlClient;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.DiskImage;
import dev.lazypull.image.Json;
import dev.lazypull.image.Manifest;
import dev.lazypull.oci.OciLayout;
import dev.lazypull.sys.Posix;
import dev.lazypull.testing.LazypullProcess;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.VmHarness;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
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
 * The writable export against {@code qemu-nbd} serving a qcow2 overlay of the same base (a raw
 * file), side by side in one run, over unix sockets, with fio's nbd engine (one connection, as a
 * guest's one queue):
 *
 * <ul>
 *   <li>random 4 KiB writes (iodepth 32, 10 s): IOPS; sequential 1 MiB writes (iodepth 4): MiB/s;
 *       random 4 KiB writes one at a time, each followed by a FLUSH (8 s): IOPS — three interleaved
 *       runs each, fresh overlays every run, medians;
 *   <li>the same fixed workload on both (random 4 KiB writes of incompressible data, then a trimmed
 *       range and a range written and then trimmed whole): our snapshot's diff layers against the
 *       qcow2 overlay's size;
 *   <li>fork latency over one kept-open control connection: request to reply (the new socket
 *       listens: it is connectable) and request to the new socket's greeting (p50/p90 of 200); and
 *       a separate process started to "serving".
 * </ul>
 *
 * Run after {@code mvn package -DskipTests}: {@code mvn -Pbench test -Dtest=WritableNbdBench
 * -Dsurefire.failIfNoSpecifiedTests=false}; {@code -Dwritable.bench.mib=N} sets the disk size
 * (default 256).
 */
@Tag("bench")
class WritableNbdBench {
  private static final int RUNS = 3;

  @Test
  void writesDiffSizeAndForksVersusQemuNbdQcow2() throws Exception {
    for (String tool : new String[] {"fio", "qemu-nbd", "qemu-img", "qemu-io", "nbdcopy"}) {
      Requirements.requireTool(tool);
    }
    int mib = Integer.getInteger("writable.bench.mib", 256);
    Path jar = VmHarness.jar();
    Path work = VmHarness.baseDir().resolve("target/bench-work/writable-" + mib);
    Path raw = work.resolve("base.raw");
    String image = "oci:" + work.resolve("layout") + ":base";
    if (!Files.exists(work.resolve("layout"))) {
      Files.createDirectories(work);
      write(raw, (long) mib << 20, 3);
      if (Main.run("import", "--disk", raw.toString(), "--output", image) != 0) {
        throw new AssertionError("import failed");
      }
    }
    Path cache = work.resolve("cache");
    try (LazypullProcess p =
        serve(jar, work, image, "warm", cache)) { // fill the cache once: base reads are local
      Requirements.run("nbdcopy", uri(work.resolve("warm.sock")), "null:");
      p.stop();
    }
    Requirements.run("bash", "-c", "cat '" + raw + "' > /dev/null");

    List<Double> oursIops = new ArrayList<>();
    List<Double> qemuIops = new ArrayList<>();
    List<Double> oursSeq = new ArrayList<>();
    List<Double> qemuSeq = new ArrayList<>();
    List<Double> oursSync = new ArrayList<>();
    List<Double> qemuSync = new ArrayList<>();
    for (int run = 0; run < RUNS; run++) {
      try (Served ours = ours(jar, work, image, cache, "ours-" + run);
          Served qemu = qemu(work, raw, "qemu-" + run)) {
        // first, on the fresh overlays, with nothing else waiting to be written back: each write
        // then a FLUSH
        Requirements.run("sync");
        oursSync.add(fio(work, ours.socket, "randwrite", "4k", -1, mib, 8).iops);
        Requirements.run("sync");
        qemuSync.add(fio(work, qemu.socket, "randwrite", "4k", -1, mib, 8).iops);
        oursIops.add(fio(work, ours.socket, "randwrite", "4k", 32, mib, 10).iops);
        qemuIops.add(fio(work, qemu.socket, "randwrite", "4k", 32, mib, 10).iops);
        oursSeq.add(fio(work, ours.socket, "write", "1m", 4, mib, 0).mibPerS);
        qemuSeq.add(fio(work, qemu.socket, "write", "1m", 4, mib, 0).mibPerS);
      }
    }

    // the same workload on both, then what each keeps
    Path ovWork;
    long qcowFile;
    long qcowAllocated;
    long oursData;
    long oursLayers;
    long oursMap;
    try (Served ours = ours(jar, work, image, cache, "diff");
        Served qemu = qemu(work, raw, "diff")) {
      for (Path s : new Path[] {ours.socket, qemu.socket}) {
        fioWorkload(work, s, mib);
      }
      ovWork = ours.overlay;
      qcowFile = Files.size(qemu.qcow2);
      qcowAllocated = Posix.allocatedBytes(qemu.qcow2.toString());
    }
    Path snap = work.resolve("snap");
    Requirements.run("rm", "-rf", snap.toString());
    if (Main.run("snapshot", "--overlay", ovWork.toString(), "--output", "oci:" + snap + ":s")
        != 0) {
      throw new AssertionError("snapshot failed");
    }
    OciLayout oci = new OciLayout(snap, "s");
    Descriptor md = oci.findManifest();
    DiskImage img =
        DiskImage.of(
            "s", md.digest(), Json.parse(oci.readVerified(md), Manifest.class, "manifest"));
    DiskImage.Diff d = img.diffs().get(0);
    oursMap = d.map().size();
    oursData = d.data() == null ? 0 : d.data().size();
    oursLayers = oursMap + oursData + (d.table() == null ? 0 : d.table().size());

    // write and then trim everything written: nothing should stay
    long trimOurs;
    long trimQcow;
    try (Served ours = ours(jar, work, image, cache, "trim");
        Served qemu = qemu(work, raw, "trim")) {
      for (Path s : new Path[] {ours.socket, qemu.socket}) {
        Requirements.run(
            "qemu-io",
            "-f",
            "raw",
            "-c",
            "write -P 0x5a 0 33554432",
            "-c",
            "discard 0 33554432",
            "-c",
            "write -z 33554432 16777216",
            "-c",
            "flush",
            uri(s));
      }
      ovWork = ours.overlay;
      trimQcow = Files.size(qemu.qcow2);
    }
    Requirements.run("rm", "-rf", snap.toString());
    if (Main.run("snapshot", "--overlay", ovWork.toString(), "--output", "oci:" + snap + ":t")
        != 0) {
      throw new AssertionError("snapshot failed");
    }
    oci = new OciLayout(snap, "t");
    md = oci.findManifest();
    DiskImage t =
        DiskImage.of(
            "t", md.digest(), Json.parse(oci.readVerified(md), Manifest.class, "manifest"));
    trimOurs = t.diffs().get(0).data() == null ? 0 : t.diffs().get(0).data().size();

    // forks
    List<Double> forkMs = new ArrayList<>();
    List<Double> replyMs = new ArrayList<>();
    List<Double> serverMs = new ArrayList<>();
    Path control = work.resolve("ctl/c.sock");
    try (LazypullProcess p =
        LazypullProcess.start(
            jar,
            work.resolve("fork"),
            "nbd",
            image,
            "--writable",
            "--overlay",
            fresh(work.resolve("ov-fork")).toString(),
            "--control",
            control.toString(),
            "--listen",
            "unix:" + work.resolve("fork.sock"),
            "--cache-dir",
            cache.toString(),
            "--log-level",
            "warn")) {
      p.awaitLine("serving", 60);
      Path forks = fresh(work.resolve("forks"));
      // one control connection kept open, as an orchestrator would (the protocol takes many
      // requests on one)
      try (SocketChannel ctl = SocketChannel.open(StandardProtocolFamily.UNIX)) {
        ctl.connect(UnixDomainSocketAddress.of(control));
        for (int i = 0; i < 250; i++) {
          long t0 = System.nanoTime();
          JsonNode r =
              call(
                  ctl,
                  ControlClient.request("fork")
                      .put("name", "b" + i)
                      .put("overlay", forks.resolve("b" + i).toString()));
          long t1 =
              System.nanoTime(); // the reply comes once the socket listens: connectable from here
          Path s = Path.of(r.path("uri").asText().substring("nbd+unix:///?socket=".length()));
          try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(s));
            ByteBuffer greeting = ByteBuffer.allocate(8);
            while (greeting.hasRemaining() && ch.read(greeting) >= 0) {
              // the server's first bytes: it is serving
            }
          }
          if (i >= 50) { // after JIT warm-up
            forkMs.add((System.nanoTime() - t0) / 1e6);
            replyMs.add((t1 - t0) / 1e6);
            serverMs.add(r.path("micros").asLong() / 1e3);
          }
          call(ctl, ControlClient.request("unfork").put("name", "b" + i));
        }
      }
      p.stop();
    }
    List<Double> processMs = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      long t0 = System.nanoTime();
      try (LazypullProcess p =
          serve(
              jar,
              work,
              image,
              "proc-" + i,
              cache,
              "--writable",
              "--overlay",
              fresh(work.resolve("ov-proc-" + i)).toString())) {
        processMs.add((System.nanoTime() - t0) / 1e6);
        p.stop();
      }
    }

    double ratioIops = median(oursIops) / median(qemuIops);
    double ratioSeq = median(oursSeq) / median(qemuSeq);
    System.out.printf(
        Locale.ROOT,
        "%nWritable NBD benchmark: a %d MiB disk, fio nbd engine, 1 connection (%d CPUs)%n",
        mib,
        Runtime.getRuntime().availableProcessors());
    System.out.printf(
        Locale.ROOT,
        "  random 4 KiB writes, iodepth 32: lazypull %6.0f IOPS %s, qemu-nbd qcow2 %6.0f IOPS "
            + "%s: %.2fx (goal >= 1.0x)%n",
        median(oursIops),
        oursIops,
        median(qemuIops),
        qemuIops,
        ratioIops);
    System.out.printf(
        Locale.ROOT,
        "  sequential 1 MiB writes, iodepth 4: lazypull %5.0f MiB/s %s, qemu-nbd qcow2 %5.0f "
            + "MiB/s %s: %.2fx%n",
        median(oursSeq),
        oursSeq,
        median(qemuSeq),
        qemuSeq,
        ratioSeq);
    System.out.printf(
        Locale.ROOT,
        "  random 4 KiB writes, each followed by a FLUSH: lazypull %5.0f IOPS %s, qemu-nbd "
            + "qcow2 %5.0f IOPS %s: %.2fx%n",
        median(oursSync),
        oursSync,
        median(qemuSync),
        qemuSync,
        median(oursSync) / median(qemuSync));
    System.out.printf(
        Locale.ROOT,
        "  after the same workload: lazypull diff %d bytes (data %d, map %d, table %d); "
            + "qcow2 overlay %d bytes (%d allocated): %.2fx%n",
        oursLayers,
        oursData,
        oursMap,
        oursLayers - oursData - oursMap,
        qcowFile,
        qcowAllocated,
        (double) oursLayers / qcowFile);
    System.out.printf(
        Locale.ROOT,
        "  32 MiB written then trimmed, 16 MiB zeroed: lazypull diff data %d bytes; qcow2 "
            + "overlay %d bytes%n",
        trimOurs,
        trimQcow);
    System.out.printf(
        Locale.ROOT,
        "  fork over the control socket (%d): request to reply (connectable) p50 %.2f ms, "
            + "p90 %.2f ms; request to the new socket's greeting p50 %.2f ms, p90 %.2f ms, max %.2f ms; server side "
            + "p50 %.2f ms; a new process to serving: %s ms%n",
        forkMs.size(),
        median(replyMs),
        pct(replyMs, 0.9),
        median(forkMs),
        pct(forkMs, 0.9),
        Collections.max(forkMs),
        median(serverMs),
        processMs);
  }

  private record Served(
      Process process, LazypullProcess ours, Path socket, Path overlay, Path qcow2)
      implements AutoCloseable {
    @Override
    public void close() throws Exception {
      if (ours != null) {
        ours.stop();
      } else {
        process.destroy();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
          process.destroyForcibly();
        }
      }
    }
  }

  /** One request and its reply line on a kept-open control connection. */
  private static JsonNode call(SocketChannel ch, ObjectNode request) throws Exception {
    byte[] body = Json.MAPPER.writeValueAsBytes(request);
    ByteBuffer out = ByteBuffer.allocate(body.length + 1).put(body).put((byte) '\n').flip();
    while (out.hasRemaining()) {
      ch.write(out);
    }
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    ByteBuffer one = ByteBuffer.allocate(1);
    while (true) {
      one.clear();
      if (ch.read(one) < 0) {
        throw new AssertionError("control connection closed");
      }
      if (one.get(0) == '\n') {
        break;
      }
      line.write(one.get(0));
    }
    JsonNode r = Json.MAPPER.readTree(line.toByteArray());
    if (!r.path("ok").asBoolean()) {
      throw new AssertionError(r.toString());
    }
    return r;
  }

  private static Path fresh(Path dir) throws Exception {
    Requirements.run("rm", "-rf", dir.toString());
    return dir;
  }

  private static Served ours(Path jar, Path work, String image, Path cache, String name)
      throws Exception {
    Path ov = fresh(work.resolve("ov-" + name));
    LazypullProcess p =
        serve(jar, work, image, name, cache, "--writable", "--overlay", ov.toString());
    return new Served(null, p, work.resolve(name + ".sock"), ov, null);
  }

  private static Served qemu(Path work, Path raw, String name) throws Exception {
    Path qcow = work.resolve(name + ".qcow2");
    Files.deleteIfExists(qcow);
    Requirements.run(
        "qemu-img",
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        raw.toString(),
        "-F",
        "raw",
        qcow.toString());
    Path sock = work.resolve(name + "-q.sock");
    Files.deleteIfExists(sock);
    Process p =
        new ProcessBuilder(
                "qemu-nbd",
                "-t",
                "-k",
                sock.toString(),
                "-f",
                "qcow2",
                "--cache=writeback",
                "--discard=unmap",
                qcow.toString())
            .redirectErrorStream(true)
            .redirectOutput(work.resolve(name + "-qemu.log").toFile())
            .start();
    for (int i = 0; i < 1000 && !Files.exists(sock); i++) {
      if (!p.isAlive()) {
        throw new AssertionError(
            "qemu-nbd exited: " + Files.readString(work.resolve(name + "-qemu.log")));
      }
      Thread.sleep(10); // qemu-nbd has no readiness signal but its socket file
    }
    return new Served(p, null, sock, null, qcow);
  }

  private static LazypullProcess serve(
      Path jar, Path work, String image, String name, Path cache, String... extra)
      throws Exception {
    List<String> args =
        new ArrayList<>(
            List.of(
                "nbd",
                image,
                "--listen",
                "unix:" + work.resolve(name + ".sock"),
                "--cache-dir",
                cache.toString(),
                "--log-level",
                "warn"));
    args.addAll(List.of(extra));
    LazypullProcess p = LazypullProcess.start(jar, work.resolve(name), args.toArray(new String[0]));
    p.awaitLine("serving", 60);
    return p;
  }

  private record Fio(double iops, double mibPerS) {}

  private static Fio fio(
      Path work, Path socket, String rw, String bs, int depth, int mib, int seconds)
      throws Exception {
    Path out = work.resolve("fio.json");
    // depth -1: one write at a time, each followed by a FLUSH (fio --fsync=1)
    List<String> cmd =
        new ArrayList<>(
            List.of(
                "fio",
                "--name=w",
                "--ioengine=nbd",
                "--uri=" + uri(socket),
                "--rw=" + rw,
                "--bs=" + bs,
                "--iodepth=" + Math.max(1, depth),
                "--size=" + mib + "m",
                "--refill_buffers=1",
                "--randseed=1",
                "--output-format=json",
                "--output=" + out));
    if (depth < 0) {
      cmd.add("--fsync=1");
    }
    if (seconds > 0) {
      cmd.addAll(List.of("--time_based", "--runtime=" + seconds));
    }
    Requirements.run(cmd.toArray(new String[0]));
    JsonNode w = Json.MAPPER.readTree(out.toFile()).path("jobs").get(0).path("write");
    return new Fio(
        Math.round(w.path("iops").asDouble()), Math.round(w.path("bw").asDouble() / 1024.0));
  }

  /**
   * 8192 random 4 KiB writes of incompressible data (32 MiB), then 8 MiB trimmed in the middle;
   * flushed.
   */
  private static void fioWorkload(Path work, Path socket, int mib) throws Exception {
    Requirements.run(
        "fio",
        "--name=wl",
        "--ioengine=nbd",
        "--uri=" + uri(socket),
        "--rw=randwrite",
        "--bs=4k",
        "--iodepth=16",
        "--size=" + mib + "m",
        "--number_ios=8192",
        "--refill_buffers=1",
        "--randseed=42",
        "--norandommap=0",
        "--output=" + work.resolve("fio-wl.txt"));
    Requirements.run(
        "qemu-io",
        "-f",
        "raw",
        "-c",
        "discard " + ((long) mib << 19) + " 8388608",
        "-c",
        "flush",
        uri(socket));
  }

  private static String uri(Path socket) {
    return "nbd+unix:///?socket=" + socket;
  }

  private static double median(List<Double> xs) {
    return pct(xs, 0.5);
  }

  private static double pct(List<Double> xs, double p) {
    List<Double> s = new ArrayList<>(xs);
    Collections.sort(s);
    return Math.round(s.get((int) Math.min(s.size() - 1, s.size() * p)) * 100) / 100.0;
  }

  private static void write(Path file, long size, long seed) throws Exception {
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

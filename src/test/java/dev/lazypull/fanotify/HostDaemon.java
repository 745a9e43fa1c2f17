package dev.lazypull.fanotify;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lazypull.sys.MountInfo;
import dev.lazypull.sys.Mounts;
import dev.lazypull.testing.CliRun;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.VmHarness;
import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The packaged daemon in fanotify mode on the host kernel, as an operator runs it: {@code java -jar
 * lazypull.jar daemon --frontend fanotify} with a private cache, state directory, control socket
 * (whose directory is also the run directory: the fd keeper's record lives there) and metrics port,
 * all under one work directory — which must be on a filesystem that takes pre-content marks (ext4
 * here; not tmpfs). Started directly (the daemon then starts its own fd keeper) or under a command
 * prefix (the fd-store supervisor). Knows how to leave nothing behind: {@link #cleanUp} detaches
 * every mount under the work directory before it stops the daemon and its keeper. Public for the
 * benchmarks ({@code dev.lazypull.bench.FanotifyHostBench}).
 */
public final class HostDaemon implements AutoCloseable {
  private static final Pattern METRIC =
      Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\\{[^}]*\\})?) (\\S+)$");

  /**
   * The test's directory: its mounts live under it; the daemon's files under {@code root/daemon}.
   */
  public final Path root;

  final Path work;
  final Path cache;
  final Path state;
  public final Path socket;
  final Path config;
  final int metricsPort;
  private final List<String> prefix;
  private final List<String> extra;
  private Process process;
  private Path log;
  private int starts;

  private HostDaemon(Path root, Path config, List<String> prefix, List<String> extra)
      throws IOException {
    this.root = root;
    this.work = root.resolve("daemon");
    this.cache = work.resolve("cache");
    this.state = work.resolve("state");
    this.socket = work.resolve("run/lazypull.sock");
    this.config = config;
    this.metricsPort = freePort();
    this.prefix = prefix;
    this.extra = extra;
    Files.createDirectories(socket.getParent());
  }

  /**
   * What a host test of the fanotify front end needs: root, the tools, and a work dir off tmpfs.
   */
  public static void requireHost(Path work) throws Exception {
    Requirements.requireRoot();
    for (String tool : List.of("mkfs.erofs", "md5sum", "timeout", "stat", "docker-registry")) {
      Requirements.requireTool(tool);
    }
    String fs = Requirements.run("stat", "-f", "-c", "%T", work.toString()).trim();
    Requirements.require(
        !fs.equals("tmpfs") && !fs.equals("ramfs"),
        "a work directory off tmpfs (pre-content "
            + "marks need ext4/xfs/btrfs): "
            + work
            + " is on "
            + fs
            + "; set java.io.tmpdir");
    Requirements.require(
        Files.isDirectory(Path.of("/sys/fs/erofs"))
            || Requirements.run("cat", "/proc/filesystems").contains("erofs"),
        "EROFS in the host kernel");
  }

  /**
   * A daemon for the test whose directory is {@code root}, not started yet; {@code extra} flags go
   * last.
   */
  public static HostDaemon in(Path root, Path config, String... extra) throws IOException {
    return new HostDaemon(root, config, List.of(), List.of(extra));
  }

  /** Same, run as {@code prefix... java -jar lazypull.jar daemon ...} (a supervisor). */
  public static HostDaemon under(Path root, Path config, List<String> prefix, String... extra)
      throws IOException {
    return new HostDaemon(root, config, prefix, List.of(extra));
  }

  public static Path jar() {
    return VmHarness.jar();
  }

  List<String> command() {
    List<String> cmd = new ArrayList<>(prefix);
    cmd.addAll(
        List.of(
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-jar",
            jar().toString(),
            "daemon",
            "--cache-dir",
            cache.toString(),
            "--state-dir",
            state.toString(),
            "--socket",
            socket.toString(),
            "--metrics",
            "127.0.0.1:" + metricsPort,
            "--plain-http",
            "--config",
            config.toString()));
    if (!extra.contains("--frontend")) {
      cmd.addAll(List.of("--frontend", "fanotify"));
    }
    cmd.addAll(extra);
    return cmd;
  }

  /**
   * Starts it (again) and waits until it says it is ready; its output goes to {@code
   * work/daemon-N.log}.
   */
  public HostDaemon start() throws IOException, InterruptedException {
    Files.createDirectories(work);
    log = work.resolve("daemon-" + (++starts) + ".log");
    process =
        new ProcessBuilder(command())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    awaitLog("INFO Daemon: ready:", 60);
    return this;
  }

  /**
   * Waits for a line containing {@code text} in the current log; fails if the process ends first.
   */
  String awaitLog(String text, int seconds) throws InterruptedException {
    return awaitLog(text, 1, seconds);
  }

  /**
   * Waits for the {@code nth} line containing {@code text} in the current log (a supervisor's log
   * spans runs).
   */
  String awaitLog(String text, int nth, int seconds) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (true) {
      String found =
          logText().lines().filter(l -> l.contains(text)).skip(nth - 1).findFirst().orElse(null);
      if (found != null) {
        return found;
      }
      if (!process.isAlive() || System.nanoTime() > end) {
        throw new AssertionError(
            "no '" + text + "' from the daemon (alive " + process.isAlive() + "):\n" + logText());
      }
      TimeUnit.MILLISECONDS.sleep(20);
    }
  }

  String logText() {
    try {
      return Files.readString(log, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "";
    }
  }

  public Process process() {
    return process;
  }

  /**
   * kill -9 of the daemon process (or, under a prefix, of the process the prefix started: see
   * callers).
   */
  void kill9() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(30, TimeUnit.SECONDS);
  }

  /** SIGTERM: a clean stop (unmounts what it serves, ends its keeper); returns the exit status. */
  int stop() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(60, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new AssertionError("the daemon did not stop on SIGTERM:\n" + logText());
    }
    return process.exitValue();
  }

  public boolean isAlive() {
    return process != null && process.isAlive();
  }

  /**
   * {@code lazypull ARGS --socket SOCKET} in this JVM (mount(2) happens here, in the test's
   * namespace).
   */
  public CliRun.Result cli(String... args) {
    List<String> a = new ArrayList<>(List.of(args));
    a.add("--socket");
    a.add(socket.toString());
    return CliRun.run(a.toArray(String[]::new));
  }

  /** {@code lazypull mount IMAGE DIR}; fails the test unless it mounted. */
  public Path mount(String image, Path dir, String... flags) throws IOException {
    Files.createDirectories(dir);
    List<String> a = new ArrayList<>(List.of("mount"));
    a.addAll(List.of(flags));
    a.add(image);
    a.add(dir.toString());
    CliRun.Result r = cli(a.toArray(String[]::new));
    assertEquals(
        0, r.code(), "lazypull mount " + image + ":\n" + r.err() + "\ndaemon:\n" + logText());
    return dir;
  }

  public void umount(Path dir) {
    CliRun.Result r = cli("umount", dir.toString());
    assertEquals(0, r.code(), "lazypull umount " + dir + ":\n" + r.err());
  }

  /** The daemon's Prometheus metrics: {@code name} or {@code name{labels}} → value. */
  public Map<String, Double> metrics() throws IOException {
    HttpURLConnection c =
        (HttpURLConnection)
            URI.create("http://127.0.0.1:" + metricsPort + "/metrics").toURL().openConnection();
    c.setConnectTimeout(2000);
    c.setReadTimeout(5000);
    try {
      String text = new String(c.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      Map<String, Double> out = new HashMap<>();
      for (String line : text.split("\n")) {
        Matcher m = METRIC.matcher(line.trim());
        if (!line.startsWith("#") && m.matches()) {
          out.put(m.group(1), Double.parseDouble(m.group(2)));
        }
      }
      return out;
    } finally {
      c.disconnect();
    }
  }

  public double metric(String name) throws IOException {
    Double v = metrics().get(name);
    if (v == null) {
      throw new AssertionError("no metric " + name);
    }
    return v;
  }

  /** Mount points under the test's directory (this test's mounts only). */
  public List<String> mountsUnderWork() throws IOException {
    String under = root.toAbsolutePath().toString() + "/";
    return MountInfo.read().stream()
        .map(MountInfo.Mount::mountPoint)
        .filter(m -> m.startsWith(under))
        .toList();
  }

  /** The keeper's pid from its record, when one is recorded and alive. */
  Optional<ProcessHandle> keeper() {
    try {
      String[] f =
          Files.readString(socket.getParent().resolve("keeper-fanotify")).trim().split(" ");
      return ProcessHandle.of(Long.parseLong(f[0]))
          .filter(p -> p.info().commandLine().orElse("").contains("FdKeeper"));
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }

  /**
   * Leaves nothing behind: detaches every mount under the work directory (newest first), stops the
   * daemon (SIGTERM, then SIGKILL), and ends a keeper still holding the group. Never throws.
   */
  public void cleanUp() {
    try {
      List<String> mounts = new ArrayList<>(mountsUnderWork());
      for (int i = mounts.size() - 1; i >= 0; i--) {
        try {
          Mounts.umount(mounts.get(i), Mounts.MNT_DETACH);
        } catch (IOException e) {
          System.err.println("cleanup: umount " + mounts.get(i) + ": " + e.getMessage());
        }
      }
    } catch (IOException e) {
      System.err.println("cleanup: listing mounts: " + e.getMessage());
    }
    List<ProcessHandle> descendants = process == null ? List.of() : process.descendants().toList();
    if (process != null && process.isAlive()) {
      process.destroy();
      try {
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
          process.destroyForcibly();
          process.waitFor(10, TimeUnit.SECONDS);
        }
      } catch (InterruptedException e) {
        process.destroyForcibly();
        Thread.currentThread().interrupt();
      }
    }
    for (ProcessHandle d :
        descendants) { // a daemon a supervisor started, should the supervisor have left it
      if (d.isAlive() && !d.info().commandLine().orElse("").contains("FdKeeper")) {
        d.destroy();
        d.onExit()
            .orTimeout(30, TimeUnit.SECONDS)
            .exceptionally(
                t -> {
                  d.destroyForcibly();
                  return null;
                })
            .join();
      }
    }
    keeper()
        .ifPresent(
            k -> {
              k.destroyForcibly();
              k.onExit().orTimeout(10, TimeUnit.SECONDS).exceptionally(t -> null).join();
            });
  }

  @Override
  public void close() {
    cleanUp();
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }
}

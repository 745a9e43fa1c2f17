package dev.lazypull.app;

import dev.lazypull.sys.AtomicFiles;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Pidfd;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.logging.Logger;

/**
 * Keeps one descriptor alive outside the daemon when no service manager does (a daemon started by
 * hand): the fanotify group, whose last close lets every pending access through over holes. A small
 * process of its own — started in a new session, so neither the daemon's death nor a Ctrl-C in its
 * terminal ends it — takes a duplicate of the descriptor with pidfd_getfd(2) and holds it; a
 * restarted daemon takes it back the same way. It records itself in {@code RUNDIR/keeper-NAME}
 * ("pid fd") and ends when the daemon stops cleanly ({@link #stop}).
 */
public final class FdKeeper {
  private static final Logger LOG = Logger.getLogger(FdKeeper.class.getName());
  private static final Duration START_TIMEOUT = Duration.ofSeconds(30);

  private FdKeeper() {}

  private static Path stateFile(Path runDir, String name) {
    return runDir.resolve("keeper-" + name);
  }

  /** The keeper's record: its pid and the number of its duplicate. */
  private record Kept(int pid, int fd) {}

  private static Optional<Kept> read(Path runDir, String name) {
    try {
      String[] f =
          Files.readString(stateFile(runDir, name), StandardCharsets.US_ASCII).trim().split(" ");
      Kept k = new Kept(Integer.parseInt(f[0]), Integer.parseInt(f[1]));
      String cmdline = Files.readString(Path.of("/proc", f[0], "cmdline"), StandardCharsets.UTF_8);
      return cmdline.contains(FdKeeper.class.getName())
          ? Optional.of(k)
          : Optional.empty(); // not a reused pid
    } catch (NoSuchFileException e) {
      return Optional.empty();
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }

  /** Whether a live keeper holds {@code name}'s descriptor. */
  public static boolean holds(Path runDir, String name) {
    return read(runDir, name).isPresent();
  }

  /**
   * A duplicate of the descriptor a live keeper holds for {@code name}, or empty when there is
   * none.
   */
  public static Optional<Integer> takeBack(Path runDir, String name) {
    Optional<Kept> k = read(runDir, name);
    if (k.isEmpty()) {
      return Optional.empty();
    }
    try {
      return Optional.of(Pidfd.dupFrom(k.get().pid(), k.get().fd()));
    } catch (ErrnoException e) {
      LOG.warning(
          "the keeper of "
              + name
              + " (pid "
              + k.get().pid()
              + ") did not hand its descriptor over: "
              + e.getMessage());
      return Optional.empty();
    }
  }

  /**
   * Starts a keeper holding a duplicate of {@code fd} and waits until it holds it.
   *
   * @throws IOException if it cannot be started or does not take the descriptor in time
   */
  public static void keep(Path runDir, String name, int fd) throws IOException {
    keep(runDir, name, fd, List.of());
  }

  /**
   * Starts a keeper that outlives the service the daemon runs in: systemd releases a service's fd
   * store when the service stops (Debian 12's systemd 252 has no FileDescriptorStorePreserve=) and
   * ends every process of its control group, so a clean stop that must leave a busy mount's group
   * open puts the keeper in a transient scope of its own ({@code systemd-run --scope}). Where
   * systemd is not the init system — or the scope cannot be made — a plain keeper is started.
   *
   * @return whether the keeper runs in a scope of its own
   * @throws IOException if no keeper could be started
   */
  public static boolean keepBeyondTheService(Path runDir, String name, int fd) throws IOException {
    Path systemdRun = Path.of("/usr/bin/systemd-run");
    if (Files.isDirectory(Path.of("/run/systemd/system")) && Files.isExecutable(systemdRun)) {
      try {
        keep(runDir, name, fd, scopePrefix(systemdRun, name));
        return true;
      } catch (IOException e) {
        LOG.warning(
            "no scope for the "
                + name
                + " keeper ("
                + e.getMessage()
                + "); a plain keeper instead");
      }
    }
    keep(runDir, name, fd, List.of());
    return false;
  }

  /** {@code systemd-run} in scope mode: it moves itself to a new scope and exec()s the keeper. */
  static List<String> scopePrefix(Path systemdRun, String name) {
    return List.of(
        systemdRun.toString(),
        "--scope",
        "--quiet",
        "--collect",
        "--description=lazypull: keeps the " + name + " descriptor of a stopped daemon");
  }

  private static void keep(Path runDir, String name, int fd, List<String> prefix)
      throws IOException {
    Files.createDirectories(runDir);
    Path state = stateFile(runDir, name);
    Files.deleteIfExists(state);
    List<String> cmd = new ArrayList<>(prefix);
    if (Files.isExecutable(Path.of("/usr/bin/setsid"))) {
      cmd.add(
          "/usr/bin/setsid"); // its own session: signals to the daemon's terminal do not reach it
    }
    cmd.addAll(
        List.of(
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-Xmx16m",
            "-Xss256k",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            classPath(),
            FdKeeper.class.getName(),
            Long.toString(ProcessHandle.current().pid()),
            Integer.toString(fd),
            state.toString()));
    Process p =
        new ProcessBuilder(cmd)
            .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start();
    long end = System.nanoTime() + START_TIMEOUT.toNanos();
    while (read(runDir, name).isEmpty()) { // it writes its record once it holds the descriptor
      if (System.nanoTime() > end || (!p.isAlive() && p.exitValue() != 0)) {
        p.destroy();
        throw new IOException(
            "the fd keeper for " + name + " did not start (see `lazypull daemon --help`)");
      }
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
    }
  }

  /**
   * Starts a keeper for {@code fd} unless a live one holds {@code name}'s descriptor.
   *
   * @return whether a new keeper had to be started
   * @throws IOException if it cannot be started
   */
  public static boolean ensure(Path runDir, String name, int fd) throws IOException {
    if (read(runDir, name).isPresent()) {
      return false;
    }
    keep(runDir, name, fd);
    return true;
  }

  /** Ends the keeper of {@code name} (after a clean stop: nothing is pending any more). */
  public static void stop(Path runDir, String name) {
    read(runDir, name).flatMap(k -> ProcessHandle.of(k.pid())).ifPresent(ProcessHandle::destroy);
    try {
      Files.deleteIfExists(stateFile(runDir, name));
    } catch (IOException e) {
      LOG.fine(() -> "removing the keeper record: " + e.getMessage());
    }
  }

  private static String classPath() throws IOException {
    try {
      return Path.of(FdKeeper.class.getProtectionDomain().getCodeSource().getLocation().toURI())
          .toString();
    } catch (URISyntaxException e) {
      throw new IOException("cannot locate lazypull's classes: " + e.getMessage(), e);
    }
  }

  /** The keeper: {@code FdKeeper DAEMON_PID FD STATE_FILE}. */
  public static void main(String[] args) throws Exception {
    int fd = Pidfd.dupFrom(Integer.parseInt(args[0]), Integer.parseInt(args[1]));
    AtomicFiles.write(
        Path.of(args[2]),
        (ProcessHandle.current().pid() + " " + fd + "\n").getBytes(StandardCharsets.US_ASCII));
    while (true) { // holds the descriptor until it is told to end (SIGTERM)
      LockSupport.park();
    }
  }
}

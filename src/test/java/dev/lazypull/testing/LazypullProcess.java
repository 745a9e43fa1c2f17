package dev.lazypull.testing;

import java.io.Closeable;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * {@code java -jar lazypull.jar ARGS} as a child process (the packaged CLI, as users run it): waits
 * for a line on stdout, stops with SIGTERM, and parses the {@code stats k=v ...} line the nbd
 * command prints at exit. Output goes to files, not pipes: the JDK may close a child's pipe under a
 * reader when the child exits, losing the last lines — which is exactly where the stats line is.
 */
public final class LazypullProcess implements Closeable {
  private final Process process;
  private final Path out;
  private final Path err;

  private LazypullProcess(Process process, Path out, Path err) {
    this.process = process;
    this.out = out;
    this.err = err;
  }

  /** Starts the jar with {@code args}; its stdout and stderr go to {@code logPrefix}.out / .err. */
  public static LazypullProcess start(Path jar, Path logPrefix, String... args) throws IOException {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-jar",
                jar.toString()));
    cmd.addAll(List.of(args));
    Path out = Path.of(logPrefix + ".out");
    Path err = Path.of(logPrefix + ".err");
    Process p =
        new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
    return new LazypullProcess(p, out, err);
  }

  private static String read(Path p) {
    try {
      return Files.readString(p, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "";
    }
  }

  /**
   * Waits for a stdout line containing {@code text}; fails with the output if the process dies
   * first.
   */
  public String awaitLine(String text, int seconds) throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (System.nanoTime() < until) {
      for (String l : read(out).split("\n")) {
        if (l.contains(text)) {
          return l;
        }
      }
      if (!process.isAlive()) {
        break;
      }
      Thread.sleep(20);
    }
    throw new AssertionError(
        "no '" + text + "' from lazypull (alive " + process.isAlive() + ")\n" + output());
  }

  /** SIGTERM, wait for exit, and return the stats of the last {@code stats} line on stderr. */
  public Map<String, Long> stop() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(30, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new AssertionError("lazypull did not stop on SIGTERM\n" + output());
    }
    Map<String, Long> stats = new HashMap<>();
    for (String l : read(err).split("\n")) {
      int at = l.indexOf(" stats ");
      if (at >= 0) {
        for (String kv : l.substring(at + 7).trim().split("\\s+")) {
          String[] p = kv.split("=", 2);
          stats.put(p[0], Long.parseLong(p[1]));
        }
      }
    }
    if (stats.isEmpty()) {
      throw new AssertionError(
          "no stats line from lazypull (exit " + process.exitValue() + ")\n" + output());
    }
    return stats;
  }

  public long pid() {
    return process.pid();
  }

  /**
   * SIGKILL (kill -9): no shutdown hook runs, nothing is flushed; waits until the process is gone.
   */
  public void kill9() throws InterruptedException {
    process.destroyForcibly(); // SIGKILL on Linux
    if (!process.waitFor(30, TimeUnit.SECONDS)) {
      throw new AssertionError("lazypull survived SIGKILL");
    }
  }

  /** Waits for the process to exit by itself (e.g. a refused start) and returns its exit code. */
  public int awaitExit(int seconds) throws InterruptedException {
    if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
      throw new AssertionError("lazypull did not exit within " + seconds + " s\n" + output());
    }
    return process.exitValue();
  }

  public String output() {
    return "stdout: " + read(out) + "\nstderr: " + read(err);
  }

  @Override
  public void close() {
    if (process.isAlive()) {
      process.destroyForcibly();
    }
  }
}

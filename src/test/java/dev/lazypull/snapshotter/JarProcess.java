package dev.lazypull.snapshotter;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * {@code java -jar lazypull.jar ARGS} as a long-running child (daemon, snapshotter): output to
 * files, a line awaited on stdout, and the two ways it ends — {@link #terminate} (SIGTERM, a clean
 * stop) and {@link #kill} (SIGKILL, a crash).
 */
final class JarProcess implements AutoCloseable {
  private final Process process;
  private final Path out;
  private final Path err;

  private JarProcess(Process process, Path out, Path err) {
    this.process = process;
    this.out = out;
    this.err = err;
  }

  static JarProcess start(Path jar, Path logPrefix, String... args) throws IOException {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-jar",
                jar.toString()));
    cmd.addAll(List.of(args));
    Path o = Path.of(logPrefix + ".out");
    Path e = Path.of(logPrefix + ".err");
    return new JarProcess(
        new ProcessBuilder(cmd).redirectOutput(o.toFile()).redirectError(e.toFile()).start(), o, e);
  }

  private static String read(Path p) {
    try {
      return Files.readString(p, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "";
    }
  }

  void awaitLine(String text, int seconds) throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (System.nanoTime() < until) {
      if (read(out).contains(text)) {
        return;
      }
      if (!process.isAlive()) {
        break;
      }
      TimeUnit.MILLISECONDS.sleep(20);
    }
    throw new AssertionError("no '" + text + "' (alive " + process.isAlive() + ")\n" + output());
  }

  boolean isAlive() {
    return process.isAlive();
  }

  long pid() {
    return process.pid();
  }

  String output() {
    return "stdout: " + read(out) + "\nstderr: " + read(err);
  }

  /** SIGTERM and wait: a clean stop. */
  void terminate() {
    process.destroy();
    await();
  }

  /** SIGKILL and wait: a crash. */
  void kill() {
    process.destroyForcibly();
    await();
  }

  private void await() {
    try {
      if (!process.waitFor(60, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() {
    if (process.isAlive()) {
      terminate();
    }
  }
}

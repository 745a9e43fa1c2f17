package dev.lazypull.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A private containerd (Debian's 1.6) for one test class: root, state, gRPC and ttrpc sockets under
 * one directory, the CRI plugin disabled, garbage collection after every deletion, and proxy
 * snapshotters as given. {@link #ctr} runs {@code ctr} against it with a deadline, so a hung call
 * fails the test instead of hanging it. {@link #close} kills the tasks it ran, stops containerd and
 * ends the shims it started.
 */
public final class ContainerdFixture implements AutoCloseable {
  private final Path dir;
  private final Process process;

  /** What one {@code ctr} run did. */
  public record Ctr(int code, String out) {
    public Ctr ok() {
      if (code != 0) {
        throw new AssertionError("ctr exited " + code + ":\n" + out);
      }
      return this;
    }
  }

  private ContainerdFixture(Path dir, Process process) {
    this.dir = dir;
    this.process = process;
  }

  /** Starts containerd with {@code proxySnapshotters} (name → socket) in its config. */
  public static ContainerdFixture start(Path dir, Map<String, Path> proxySnapshotters)
      throws IOException, InterruptedException {
    Requirements.requireTool("containerd");
    Requirements.requireTool("ctr");
    Requirements.requireTool("runc");
    Requirements.requireTool("containerd-shim-runc-v2");
    Files.createDirectories(dir);
    StringBuilder toml =
        new StringBuilder()
            .append("version = 2\n")
            .append("root = \"")
            .append(dir.resolve("root"))
            .append("\"\n")
            .append("state = \"")
            .append(dir.resolve("state"))
            .append("\"\n")
            .append("disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n")
            .append("[grpc]\n  address = \"")
            .append(dir.resolve("containerd.sock"))
            .append("\"\n")
            .append("[ttrpc]\n  address = \"")
            .append(dir.resolve("containerd.sock.ttrpc"))
            .append("\"\n")
            .append("[plugins.\"io.containerd.gc.v1.scheduler\"]\n  deletion_threshold = 1\n")
            .append("[proxy_plugins]\n");
    proxySnapshotters.forEach(
        (name, sock) ->
            toml.append("  [proxy_plugins.")
                .append(name)
                .append("]\n    type = \"snapshot\"\n    address = \"")
                .append(sock)
                .append("\"\n"));
    Path config = dir.resolve("config.toml");
    Files.writeString(config, toml);
    Process p =
        new ProcessBuilder("containerd", "--config", config.toString())
            .redirectErrorStream(true)
            .redirectOutput(dir.resolve("containerd.log").toFile())
            .start();
    ContainerdFixture f = new ContainerdFixture(dir, p);
    try {
      Await.until(
          () -> {
            if (!p.isAlive()) {
              throw new AssertionError("containerd exited " + p.exitValue() + ":\n" + f.log());
            }
            return f.ctr(Duration.ofSeconds(10), "version").code() == 0;
          },
          Duration.ofSeconds(60),
          "containerd answers on " + f.socket());
    } catch (RuntimeException | Error | InterruptedException e) {
      f.close();
      throw e;
    }
    return f;
  }

  public Path socket() {
    return dir.resolve("containerd.sock");
  }

  public String log() {
    try {
      return Files.readString(dir.resolve("containerd.log"), StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "(no log: " + e.getMessage() + ")";
    }
  }

  /** {@code ctr -a SOCKET ARGS}, at most two minutes. */
  public Ctr ctr(String... args) throws IOException, InterruptedException {
    return ctr(Duration.ofMinutes(2), args);
  }

  public Ctr ctr(Duration deadline, String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(List.of("ctr", "-a", socket().toString()));
    cmd.addAll(List.of(args));
    Path out = Files.createTempFile(dir, "ctr-", ".out");
    Process p =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
    try {
      if (!p.waitFor(deadline.toMillis(), TimeUnit.MILLISECONDS)) {
        p.destroyForcibly();
        p.waitFor(10, TimeUnit.SECONDS);
        throw new AssertionError(
            "ctr "
                + String.join(" ", args)
                + " did not finish within "
                + deadline.toSeconds()
                + " s (hung):\n"
                + Files.readString(out));
      }
      return new Ctr(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
    } finally {
      Files.deleteIfExists(out);
    }
  }

  /** Kills and deletes every task and container of {@code namespace} (best effort). */
  public void removeContainers(String namespace) {
    try {
      for (String line : ctr("-n", namespace, "containers", "ls", "-q").out().split("\n")) {
        String id = line.strip();
        if (id.isEmpty()) {
          continue;
        }
        ctr("-n", namespace, "task", "kill", "-s", "SIGKILL", id);
        ctr("-n", namespace, "task", "rm", "-f", id);
        ctr("-n", namespace, "containers", "rm", id);
      }
    } catch (IOException | InterruptedException | AssertionError e) {
      System.err.println("removing containers of " + namespace + ": " + e);
    }
  }

  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(20, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
    // shims outlive containerd by design: end the ones started for this containerd (they name its
    // socket)
    String mine = socket().toString();
    ProcessHandle.allProcesses()
        .filter(
            h ->
                h.info()
                    .commandLine()
                    .map(c -> c.contains("containerd-shim") && c.contains(mine))
                    .orElse(false))
        .forEach(ProcessHandle::destroyForcibly);
  }
}

package dev.lazypull.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.opentest4j.TestAbortedException;

/**
 * Guards for tests that need root, external tools, QEMU or a registry. Outside CI a missing
 * requirement skips the test; under {@code CI=true} it fails it, so CI can never pass by skipping.
 */
public final class Requirements {
  private Requirements() {}

  public static boolean isCi() {
    return "true".equalsIgnoreCase(System.getenv("CI"));
  }

  public static void require(boolean condition, String what) {
    if (condition) {
      return;
    }
    if (isCi()) {
      throw new AssertionError("CI=true but the test requirement is not met: " + what);
    }
    throw new TestAbortedException("skipped outside CI: " + what);
  }

  public static void requireTool(String tool) {
    require(which(tool) != null, tool + " on PATH");
  }

  public static void requireRoot() {
    require("root".equals(System.getProperty("user.name")), "running as root");
  }

  public static Path which(String tool) {
    for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
      Path p = Path.of(dir, tool);
      if (Files.isExecutable(p)) {
        return p;
      }
    }
    for (String dir : new String[] {"/usr/sbin", "/sbin"}) {
      Path p = Path.of(dir, tool);
      if (Files.isExecutable(p)) {
        return p;
      }
    }
    return null;
  }

  /** Runs a command, fails the test with its output if it exits non-zero; returns stdout+stderr. */
  public static String run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    byte[] out = p.getInputStream().readAllBytes();
    if (!p.waitFor(600, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError(String.join(" ", command) + ": timed out");
    }
    String text = new String(out, StandardCharsets.UTF_8);
    if (p.exitValue() != 0) {
      throw new AssertionError(
          String.join(" ", command) + " exited " + p.exitValue() + ":\n" + text);
    }
    return text;
  }
}

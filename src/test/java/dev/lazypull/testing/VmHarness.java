package dev.lazypull.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs a script inside the QEMU guest (Debian 6.12 with ONDEMAND cachefiles/erofs, see
 * native-stubs/vm) and collects the {@code @@CHECK} and {@code @@RESULT} lines it prints.
 */
public final class VmHarness {
  public record Run(
      int exitCode, List<String> output, Map<String, Boolean> checks, Map<String, String> results) {
    public String tail(int lines) {
      return String.join("\n", output.subList(Math.max(0, output.size() - lines), output.size()));
    }

    public long result(String name) {
      String v = results.get(name);
      if (v == null) {
        throw new AssertionError("guest printed no @@RESULT " + name + "\n" + tail(80));
      }
      return Long.parseLong(v.trim());
    }

    /** Asserts the run ended well, every expected check ran, and all checks passed. */
    public void assertPassed(String... expectedChecks) {
      List<String> failed = new ArrayList<>();
      checks.forEach(
          (k, ok) -> {
            if (!ok) {
              failed.add(k);
            }
          });
      List<String> missing = new ArrayList<>();
      for (String c : expectedChecks) {
        if (!checks.containsKey(c)) {
          missing.add(c);
        }
      }
      if (exitCode != 0 || !failed.isEmpty() || !missing.isEmpty()) {
        throw new AssertionError(
            "guest run: exit "
                + exitCode
                + ", failed checks "
                + failed
                + ", missing checks "
                + missing
                + "\n"
                + tail(150));
      }
    }
  }

  private VmHarness() {}

  public static Path baseDir() {
    return Path.of(System.getProperty("lazypull.basedir", ".")).toAbsolutePath().normalize();
  }

  public static Path jar() {
    Path jar =
        Path.of(
            System.getProperty(
                "lazypull.jar", baseDir().resolve("target/lazypull.jar").toString()));
    Requirements.require(Files.isRegularFile(jar), "built jar " + jar + " (run `mvn verify`)");
    return jar.toAbsolutePath();
  }

  /**
   * A docker-registry config for a registry on the guest's loopback at {@code port}, its storage at
   * /mnt/registry-storage (the guest script copies the seeded storage there), warnings only.
   *
   * @param accessLog log every request (guest scripts count the bytes served from it)
   * @param extra top-level YAML appended as is (e.g. an {@code auth:} section), or ""
   */
  public static String guestRegistryConfig(int port, boolean accessLog, String extra) {
    return "version: 0.1\nlog:\n  level: warn\n"
        + (accessLog ? "  accesslog:\n    disabled: false\n" : "")
        + "storage:\n  filesystem:\n    rootdirectory: /mnt/registry-storage\nhttp:\n  addr: 127.0.0.1:"
        + port
        + "\n"
        + extra;
  }

  /**
   * A fresh work dir under target/. The guest sees it at the same path wherever the checkout is:
   * vm-run.sh shares the checkout back into the guest when the guest's own /tmp, /run, /var/tmp or
   * /mnt would hide it, so paths written here into configs and scripts hold inside the guest too.
   */
  public static Path workDir(String name) throws IOException, InterruptedException {
    Path dir = baseDir().resolve("target/vm-work").resolve(name);
    if (Files.exists(dir)) {
      Requirements.run("rm", "-rf", dir.toString());
    }
    return Files.createDirectories(dir);
  }

  public static void requireVm() {
    Requirements.requireRoot();
    Requirements.requireTool("qemu-system-x86_64");
  }

  /**
   * An AppCDS archive of the classes a CLI command loads, made on the host for the same JDK and jar
   * path (both reach the guest unchanged over 9p): each of the guest's many short CLI runs starts
   * faster under TCG. Null if it cannot be made (the guest then simply runs without it).
   */
  static synchronized Path classDataArchive() {
    Path jar = jar();
    Path jsa = jar.resolveSibling("lazypull-cli.jsa");
    try {
      if (Files.exists(jsa)
          && Files.getLastModifiedTime(jsa).compareTo(Files.getLastModifiedTime(jar)) > 0) {
        return jsa;
      }
      Files.deleteIfExists(jsa);
      Process p =
          new ProcessBuilder(
                  "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
                  "-XX:ArchiveClassesAtExit=" + jsa,
                  "-XX:TieredStopAtLevel=1",
                  "-XX:+UseSerialGC",
                  "-jar",
                  jar.toString(),
                  "status",
                  "--socket",
                  "/nonexistent/lazypull.sock")
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .start();
      p.waitFor(120, TimeUnit.SECONDS);
      return Files.exists(jsa) ? jsa : null;
    } catch (IOException | InterruptedException e) {
      return null;
    }
  }

  /**
   * Boots the guest and runs {@code guestScript ARGS...} in it with LAZYPULL_JAR set; echoes the
   * guest console to stdout as it goes (CI logs show the run).
   */
  public static Run run(Path workDir, Path guestScript, int timeoutSeconds, String... args)
      throws IOException, InterruptedException {
    requireVm();
    Path wrapper = workDir.resolve("guest-cmd.sh");
    StringBuilder cmd =
        new StringBuilder("#!/bin/bash\nexport LAZYPULL_JAR=").append(jar()).append('\n');
    Path cds = classDataArchive();
    if (cds != null) {
      cmd.append("export LAZYPULL_CDS=").append(cds).append('\n');
    }
    cmd.append("exec bash ").append(guestScript.toAbsolutePath());
    for (String a : args) {
      cmd.append(" '").append(a.replace("'", "'\\''")).append('\'');
    }
    cmd.append('\n');
    Files.writeString(wrapper, cmd.toString());
    Files.setPosixFilePermissions(wrapper, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path runner = baseDir().resolve("native-stubs/vm/vm-run.sh");
    Process p =
        new ProcessBuilder(
                runner.toString(),
                "--timeout",
                Integer.toString(timeoutSeconds),
                wrapper.toString())
            .directory(workDir.toFile())
            .redirectErrorStream(true)
            .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
            .start();
    // If this JVM is stopped (Ctrl-C, a killed build), stop the guest too instead of leaving it to
    // its timeout.
    Thread stopGuest = new Thread(p::destroy, "stop-vm");
    Runtime.getRuntime().addShutdownHook(stopGuest);
    List<String> lines = new ArrayList<>();
    Map<String, Boolean> checks = new LinkedHashMap<>();
    Map<String, String> results = new LinkedHashMap<>();
    try (BufferedReader r =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = r.readLine()) != null) {
        System.out.println("[vm] " + line);
        lines.add(line);
        int at = line.indexOf("@@CHECK ");
        if (at >= 0) {
          String[] f = line.substring(at + 8).trim().split("\\s+");
          if (f.length >= 2) {
            checks.merge(f[0], f[1].equals("PASS"), Boolean::logicalAnd);
          }
        }
        at = line.indexOf("@@RESULT ");
        if (at >= 0) {
          String[] f = line.substring(at + 9).trim().split("\\s+", 2);
          if (f.length == 2) {
            results.put(f[0], f[1]);
          }
        }
      }
    }
    if (!p.waitFor(timeoutSeconds + 120L, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("vm-run.sh did not exit");
    }
    Runtime.getRuntime().removeShutdownHook(stopGuest);
    return new Run(p.exitValue(), lines, checks, results);
  }
}

package dev.lazypull.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.Unprivileged;
import dev.lazypull.testing.VmHarness;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The daemon's clear setup errors, the jar run as users run it: no cachefiles devnode, not root, a
 * cache dir on tmpfs, a bad config. Independent of the host kernel: the daemon is pointed at a
 * devnode path that does not exist (the hidden {@code --devnode} option) instead of relying on this
 * host lacking /dev/cachefiles.
 */
class DaemonSetupErrorsIT {
  @TempDir Path tmp;

  private record Result(int code, String output) {}

  private Result run(Path jar, List<String> prefix, String... args) throws Exception {
    List<String> cmd = new ArrayList<>(prefix);
    cmd.addAll(
        List.of(
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-jar",
            jar.toString()));
    cmd.addAll(List.of(args));
    // Output to a file, not a pipe read to EOF: a daemon that wrongly starts up must fail the test
    // after the timeout, not hang it.
    Path log = Files.createTempFile(tmp, "out", ".log");
    Process p =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    boolean exited = p.waitFor(60, TimeUnit.SECONDS);
    if (!exited) {
      p.destroyForcibly().waitFor();
    }
    String out = Files.readString(log, StandardCharsets.UTF_8);
    assertTrue(exited, "still running after 60 s: " + cmd + "\n" + out);
    return new Result(p.exitValue(), out);
  }

  private Result run(String... args) throws Exception {
    return run(VmHarness.jar(), List.of(), args);
  }

  private Path noDevnode() {
    return tmp.resolve("no-such-cachefiles-devnode");
  }

  private String[] daemonArgs(Path cache) {
    return new String[] {
      "daemon",
      "--config",
      tmp.resolve("empty.toml").toString(),
      "--cache-dir",
      cache.toString(),
      "--state-dir",
      tmp.resolve("state").toString(),
      "--socket",
      tmp.resolve("run/lp.sock").toString(),
      "--devnode",
      noDevnode().toString(),
      // fscache asked for explicitly: with auto, a host with pre-content events (this one) falls
      // back to the fanotify front end and the daemon starts
      "--frontend",
      "fscache"
    };
  }

  @Test
  void setupFailuresSayWhatIsWrongAndWhatToDo() throws Exception {
    Files.writeString(tmp.resolve("empty.toml"), "");
    Requirements.requireRoot();

    // No cachefiles devnode (the module not loaded or the kernel built without it): the error names
    // the kernel
    // options (which ones depends on this host's kernel config) and the way out.
    Result noFscache = run(daemonArgs(tmp.resolve("cache")));
    assertEquals(1, noFscache.code(), noFscache.output());
    assertTrue(noFscache.output().contains(noDevnode() + " does not exist"), noFscache.output());
    assertTrue(
        noFscache.output().matches("(?s).*CONFIG_(CACHEFILES|EROFS_FS).*"), noFscache.output());
    assertTrue(noFscache.output().contains("lazypull nbd"), noFscache.output());

    // As nobody, with a copy of the jar nobody can read (the checkout itself may be in root's 0700
    // home).
    Path jar = Unprivileged.stageJar(tmp);
    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxrwxrwx"));
    Result notRoot = run(jar, Unprivileged.asNobody(), daemonArgs(tmp.resolve("cache-nobody")));
    assertEquals(1, notRoot.code(), notRoot.output());
    assertTrue(notRoot.output().contains("must run as root"), notRoot.output());

    Requirements.require(Files.isDirectory(Path.of("/dev/shm")), "/dev/shm (tmpfs)");
    Path onTmpfs = Files.createTempDirectory(Path.of("/dev/shm"), "lazypull-cache");
    try {
      Result tmpfs = run(daemonArgs(onTmpfs));
      assertEquals(1, tmpfs.code(), tmpfs.output());
      assertTrue(tmpfs.output().contains("is on tmpfs"), tmpfs.output());
    } finally {
      Requirements.run("rm", "-rf", onTmpfs.toString());
    }

    Files.writeString(tmp.resolve("bad.toml"), "[daemon]\nthreds = 4\n");
    Result badConfig = run("daemon", "--config", tmp.resolve("bad.toml").toString());
    assertEquals(2, badConfig.code(), badConfig.output());
    assertTrue(badConfig.output().contains("daemon.threds"), badConfig.output());
  }
}

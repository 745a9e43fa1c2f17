package dev.lazypull.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.VmHarness;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The daemon's clear errors on this host, whose kernel has no fscache on-demand mode: the jar as users run it.
 */
class DaemonSetupErrorsIT {
  @TempDir Path tmp;

  private record Result(int code, String output) {}

  private Result run(List<String> prefix, String... args) throws Exception {
    List<String> cmd = new ArrayList<>(prefix);
    cmd.addAll(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-jar",
        VmHarness.jar().toString()));
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    return new Result(p.exitValue(), out);
  }

  private String[] daemonArgs(Path cache) {
    return new String[] {"daemon", "--config", tmp.resolve("empty.toml").toString(), "--cache-dir", cache.toString(),
        "--state-dir", tmp.resolve("state").toString(), "--socket", tmp.resolve("run/lp.sock").toString()};
  }

  @Test
  void setupFailuresSayWhatIsWrongAndWhatToDo() throws Exception {
    Files.writeString(tmp.resolve("empty.toml"), "");
    Requirements.requireRoot();

    // This machine's kernel is built without fscache on-demand mode: the error names the options and the way out.
    Result noFscache = run(List.of(), daemonArgs(tmp.resolve("cache")));
    Requirements.require(!Files.exists(Path.of("/dev/cachefiles")), "a host kernel without cachefiles");
    assertEquals(1, noFscache.code(), noFscache.output());
    assertTrue(noFscache.output().contains("/dev/cachefiles does not exist"), noFscache.output());
    assertTrue(noFscache.output().contains("CONFIG_CACHEFILES_ONDEMAND"), noFscache.output());
    assertTrue(noFscache.output().contains("lazypull nbd"), noFscache.output());

    Requirements.requireTool("setpriv");
    Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
    Result notRoot = run(List.of("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"),
        daemonArgs(tmp.resolve("cache-nobody")));
    assertEquals(1, notRoot.code(), notRoot.output());
    assertTrue(notRoot.output().contains("must run as root"), notRoot.output());

    Requirements.require(Files.isDirectory(Path.of("/dev/shm")), "/dev/shm (tmpfs)");
    Path onTmpfs = Files.createTempDirectory(Path.of("/dev/shm"), "lazypull-cache");
    try {
      Result tmpfs = run(List.of(), daemonArgs(onTmpfs));
      assertEquals(1, tmpfs.code(), tmpfs.output());
      assertTrue(tmpfs.output().contains("is on tmpfs"), tmpfs.output());
    } finally {
      Requirements.run("rm", "-rf", onTmpfs.toString());
    }

    Files.writeString(tmp.resolve("bad.toml"), "[daemon]\nthreds = 4\n");
    Result badConfig = run(List.of(), "daemon", "--config", tmp.resolve("bad.toml").toString());
    assertEquals(2, badConfig.code(), badConfig.output());
    assertTrue(badConfig.output().contains("daemon.threds"), badConfig.output());
  }
}

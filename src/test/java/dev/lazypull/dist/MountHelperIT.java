package dev.lazypull.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.testing.CliRun;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The mount helper (src/main/dist/sbin/mount.lazypull, installed as /sbin/mount.lazypull) for real
 * on this host's kernel: util-linux mount(8) with {@code -t lazypull}, an fstab line, {@code -f},
 * refused options and a missing image, against a running daemon on the fanotify front end. mount(8)
 * only looks for helpers in /sbin, so src/test/sh/mount-helper-check.sh runs in a private mount
 * namespace where the helper is laid over /usr/sbin with an overlay: the host's /sbin is never
 * written.
 */
class MountHelperIT {
  @TempDir Path tmp;

  @Test
  void mountTypeLazypullWorksThroughTheHelper() throws Exception {
    Requirements.requireRoot();
    for (String tool : List.of("unshare", "mount", "umount", "findmnt", "md5sum")) {
      Requirements.requireTool(tool);
    }
    Requirements.require(
        Files.readString(Path.of("/proc/filesystems")).contains("overlay"), "overlayfs");
    String fs = Requirements.run("stat", "-f", "-c", "%T", tmp.toString()).trim();
    Requirements.require(
        !fs.equals("tmpfs"),
        "a work directory off tmpfs (pre-content marks): "
            + tmp
            + " is on "
            + fs
            + "; set java.io.tmpdir");
    Path jar = VmHarness.jar();
    Requirements.require(Files.isRegularFile(jar), jar + " (mvn package)");

    Path tree = TestTrees.mixed(tmp.resolve("tree"), 11);
    Path md5 = TestTrees.md5List(tree, tmp.resolve("tree.md5"));
    String image = "oci:" + tmp.resolve("layout") + ":v1";
    assertEquals(0, CliRun.run("pack", tree.toString(), "--output", image).code());

    // The helper as install.sh installs it: its launcher path rewritten (here: to a launcher of
    // this build's jar).
    Path launcher = tmp.resolve("lazypull");
    Files.writeString(
        launcher,
        "#!/bin/sh\nexec "
            + Path.of(System.getProperty("java.home"), "bin", "java")
            + " -XX:TieredStopAtLevel=1 -jar "
            + jar
            + " \"$@\"\n");
    Path helperDir = Files.createDirectories(tmp.resolve("helper"));
    Path helper = helperDir.resolve("mount.lazypull");
    Files.writeString(
        helper,
        Files.readString(VmHarness.baseDir().resolve("src/main/dist/sbin/mount.lazypull"))
            .replace("/usr/local/bin/lazypull", launcher.toString()));
    for (Path p : List.of(launcher, helper)) {
      Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    Path work = tmp.resolve("daemon");
    Path socket = work.resolve("run/lazypull.sock");
    Files.createDirectories(work.resolve("images.d"));
    Files.createDirectories(work.resolve("cache")); // the fanotify probe needs it to exist
    Files.createDirectories(socket.getParent());
    Path config = work.resolve("lazypull.toml");
    Files.writeString(config, "[daemon]\nimages_dir = \"" + work.resolve("images.d") + "\"\n");
    Path log = work.resolve("daemon.log");
    Process daemon =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-jar",
                jar.toString(),
                "daemon",
                "--frontend",
                "fanotify",
                "--config",
                config.toString(),
                "--cache-dir",
                work.resolve("cache").toString(),
                "--state-dir",
                work.resolve("state").toString(),
                "--socket",
                socket.toString())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    Path mnt = Files.createDirectories(tmp.resolve("mnt"));
    try {
      long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (!Files.readString(log).contains("ready:")) {
        assertTrue(
            daemon.isAlive() && System.nanoTime() < end,
            "the daemon did not get ready:\n" + Files.readString(log));
        Thread.sleep(50);
      }
      Process check =
          new ProcessBuilder(
                  "unshare",
                  "--mount",
                  "--propagation",
                  "private",
                  "bash",
                  VmHarness.baseDir().resolve("src/test/sh/mount-helper-check.sh").toString(),
                  helperDir.toString(),
                  socket.toString(),
                  image,
                  mnt.toString(),
                  md5.toString())
              .redirectErrorStream(true)
              .start();
      String out = new String(check.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertTrue(check.waitFor(300, TimeUnit.SECONDS), "the check timed out:\n" + out);
      System.out.println(out);
      assertEquals(
          0,
          check.exitValue(),
          "mount-helper-check.sh:\n" + out + "\ndaemon log:\n" + Files.readString(log));
      assertEquals(7, out.lines().filter(l -> l.startsWith("ok: ")).count(), out);
    } finally {
      daemon.destroy();
      if (!daemon.waitFor(30, TimeUnit.SECONDS)) {
        daemon.destroyForcibly();
      }
      keeperPid(socket.getParent()).flatMap(ProcessHandle::of).ifPresent(ProcessHandle::destroy);
    }
    assertFalse(
        Files.readString(Path.of("/proc/self/mountinfo")).contains(mnt.toString()),
        "no mount is left in the host's namespace");
  }

  /**
   * The fd keeper the hand-started daemon left, if it did not stop cleanly ({@code
   * RUNDIR/keeper-fanotify}).
   */
  private static Optional<Long> keeperPid(Path runDir) {
    try {
      String pid = Files.readString(runDir.resolve("keeper-fanotify")).trim().split(" ")[0];
      return Files.readString(Path.of("/proc", pid, "cmdline")).contains("FdKeeper")
          ? Optional.of(Long.parseLong(pid))
          : Optional.empty();
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }
}

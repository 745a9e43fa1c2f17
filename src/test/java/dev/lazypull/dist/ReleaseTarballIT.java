package dev.lazypull.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.Version;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.VmHarness;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The release tarball: launcher finds a JDK, install.sh lays files out (the mount helper with its
 * launcher path rewritten), every systemd unit verifies, and lazypull.service keeps what the
 * fanotify front end needs.
 */
class ReleaseTarballIT {
  @TempDir Path tmp;

  @Test
  void tarballInstallsAndItsUnitsVerify() throws Exception {
    Requirements.requireTool("systemd-analyze");
    Path tarball = VmHarness.baseDir().resolve("target/lazypull-" + lazypullVersion() + ".tar.gz");
    Requirements.require(
        Files.isRegularFile(tarball), "release tarball " + tarball + " (mvn package)");
    Requirements.run("tar", "-xzf", tarball.toString(), "-C", tmp.toString());
    Path dist = tmp.resolve("lazypull-" + lazypullVersion());
    for (String f :
        List.of(
            "bin/lazypull",
            "lib/lazypull.jar",
            "sbin/mount.lazypull",
            "install.sh",
            "README.md",
            "systemd/lazypull.service",
            "systemd/lazypull-nbd@.service",
            "systemd/examples/opt-app.mount",
            "systemd/examples/opt-tools.mount",
            "docs/architecture.md",
            "docs/operations.md")) {
      assertTrue(Files.exists(dist.resolve(f)), "tarball holds " + f);
    }
    String version = Requirements.run(dist.resolve("bin/lazypull").toString(), "--version");
    assertTrue(version.contains("lazypull " + Version.VERSION), version);

    // Install under a private prefix without touching the host's systemd configuration.
    Path prefix = tmp.resolve("prefix");
    Path etc = tmp.resolve("etc");
    Path sbin = tmp.resolve("sbin");
    Requirements.run(
        dist.resolve("install.sh").toString(),
        "--prefix",
        prefix.toString(),
        "--sysconfdir",
        etc.toString(),
        "--sbindir",
        sbin.toString(),
        "--no-systemd");
    assertTrue(Files.isExecutable(prefix.resolve("bin/lazypull")));
    // install.sh made a class-data archive with this JDK, and short commands load classes from it
    assertTrue(Files.isRegularFile(prefix.resolve("lib/lazypull/lazypull.jsa")), "AppCDS archive");
    try (Stream<Path> lib = Files.list(prefix.resolve("lib/lazypull"))) {
      assertEquals( // made under a temporary name, moved into place: none of those is left
          List.of("lazypull.jar", "lazypull.jsa"),
          lib.map(f -> f.getFileName().toString()).sorted().toList());
    }
    ProcessBuilder traced =
        new ProcessBuilder(prefix.resolve("bin/lazypull").toString(), "--version")
            .redirectErrorStream(true);
    traced.environment().put("LAZYPULL_JAVA_OPTS", "-Xlog:class+load=info");
    Process p = traced.start();
    String loads = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, p.waitFor());
    assertTrue(
        loads.contains("dev.lazypull.cli.Main source: shared objects file (top)"),
        "lazypull's classes come from the archive");
    assertTrue(Files.isRegularFile(prefix.resolve("share/doc/lazypull/examples/opt-app.mount")));
    // The helper runs the installed launcher; -f says what it would run and mounts nothing
    // (MountHelperIT mounts).
    Path helper = sbin.resolve("mount.lazypull");
    assertTrue(Files.isExecutable(helper), "install.sh installs " + helper);
    String fake =
        Requirements.run(
            helper.toString(),
            "oci:/images/app:v1",
            "/mnt/app",
            "-f",
            "-o",
            "rw,_netdev,domain=apps,prefetch=all,x-systemd.requires=lazypull.service");
    assertTrue(
        fake.contains(
            prefix.resolve("bin/lazypull")
                + " mount --domain apps --prefetch all -- "
                + "oci:/images/app:v1 /mnt/app"),
        fake);
    assertTrue(Files.isRegularFile(etc.resolve("lazypull/config.toml")));
    assertTrue(Files.isDirectory(etc.resolve("lazypull/images.d")));
    String help = Requirements.run(prefix.resolve("bin/lazypull").toString(), "daemon", "--help");
    assertTrue(help.contains("--cache-dir"), help);

    // systemd-analyze verify needs ExecStart to exist: point the units at the installed launcher.
    Path units = Files.createDirectories(tmp.resolve("units"));
    try (Stream<Path> s =
        Stream.concat(
            Files.list(dist.resolve("systemd")), Files.list(dist.resolve("systemd/examples")))) {
      for (Path u : (Iterable<Path>) s::iterator) {
        String name = u.getFileName().toString();
        if (name.endsWith(".service") || name.endsWith(".mount")) {
          Files.writeString(
              units.resolve(name),
              Files.readString(u)
                  .replace("/usr/local/bin/lazypull", prefix.resolve("bin/lazypull").toString()));
        }
      }
    }
    // The fanotify front end needs the fd store, NotifyAccess, and no private mount namespace
    // (docs/operations.md).
    String service = Files.readString(dist.resolve("systemd/lazypull.service"));
    List<String> settings =
        service.lines().filter(l -> !l.startsWith("#") && l.contains("=")).toList();
    for (String namespaced :
        List.of(
            "ProtectSystem=",
            "ProtectHome=",
            "PrivateTmp=",
            "PrivateDevices=",
            "ReadWritePaths=",
            "ReadOnlyPaths=",
            "InaccessiblePaths=",
            "ProtectKernelTunables=",
            "ProtectKernelModules=",
            "ProtectKernelLogs=",
            "ProtectControlGroups=",
            "ProtectProc=",
            "ProcSubset=",
            "BindPaths=",
            "TemporaryFileSystem=")) {
      assertTrue(
          settings.stream().noneMatch(l -> l.startsWith(namespaced)),
          "lazypull.service must not set "
              + namespaced
              + " (it gives the daemon a private mount namespace)");
    }
    assertTrue(settings.contains("PrivateMounts=no"), "PrivateMounts=no");
    assertTrue(settings.contains("NotifyAccess=main"), "NotifyAccess=main");
    int fdStore =
        settings.stream()
            .filter(l -> l.startsWith("FileDescriptorStoreMax="))
            .mapToInt(l -> Integer.parseInt(l.substring(l.indexOf('=') + 1).trim()))
            .findFirst()
            .orElse(0);
    assertTrue(
        fdStore >= 2, "FileDescriptorStoreMax >= 2 (cachefiles and fanotify entries): " + fdStore);
    for (String name : List.of("opt-app.mount", "opt-tools.mount")) {
      String unit = Files.readString(dist.resolve("systemd/examples").resolve(name));
      for (String want :
          List.of(
              "Type=lazypull", "Requires=lazypull.service", "After=lazypull.service", "_netdev")) {
        assertTrue(unit.contains(want), name + " has " + want);
      }
    }

    try (Stream<Path> s = Files.list(units)) {
      for (Path u : (Iterable<Path>) s.sorted()::iterator) {
        String out = Requirements.run("systemd-analyze", "verify", u.toString());
        assertTrue(out.isBlank(), "systemd-analyze verify " + u.getFileName() + ":\n" + out);
      }
    }
  }

  private static String lazypullVersion() {
    return System.getProperty("lazypull.version", Version.VERSION + "-SNAPSHOT");
  }
}

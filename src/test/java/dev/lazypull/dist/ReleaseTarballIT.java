package dev.lazypull.dist;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.Version;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.VmHarness;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The release tarball: launcher finds a JDK, install.sh lays files out, every systemd unit verifies. */
class ReleaseTarballIT {
  @TempDir Path tmp;

  @Test
  void tarballInstallsAndItsUnitsVerify() throws Exception {
    Requirements.requireTool("systemd-analyze");
    Path tarball = VmHarness.baseDir().resolve("target/lazypull-" + lazypullVersion() + ".tar.gz");
    Requirements.require(Files.isRegularFile(tarball), "release tarball " + tarball + " (mvn package)");
    Requirements.run("tar", "-xzf", tarball.toString(), "-C", tmp.toString());
    Path dist = tmp.resolve("lazypull-" + lazypullVersion());
    for (String f : List.of("bin/lazypull", "lib/lazypull.jar", "install.sh", "README.md", "systemd/lazypull.service",
        "systemd/lazypull-nbd@.service", "docs/architecture.md")) {
      assertTrue(Files.exists(dist.resolve(f)), "tarball holds " + f);
    }
    String version = Requirements.run(dist.resolve("bin/lazypull").toString(), "--version");
    assertTrue(version.contains("lazypull " + Version.VERSION), version);

    // Install under a private prefix without touching the host's systemd configuration.
    Path prefix = tmp.resolve("prefix");
    Path etc = tmp.resolve("etc");
    Requirements.run(dist.resolve("install.sh").toString(), "--prefix", prefix.toString(), "--sysconfdir",
        etc.toString(), "--no-systemd");
    assertTrue(Files.isExecutable(prefix.resolve("bin/lazypull")));
    assertTrue(Files.isRegularFile(etc.resolve("lazypull/config.toml")));
    assertTrue(Files.isDirectory(etc.resolve("lazypull/images.d")));
    String help = Requirements.run(prefix.resolve("bin/lazypull").toString(), "daemon", "--help");
    assertTrue(help.contains("--cache-dir"), help);

    // systemd-analyze verify needs ExecStart to exist: point the units at the installed launcher.
    Path units = Files.createDirectories(tmp.resolve("units"));
    try (Stream<Path> s = Stream.concat(Files.list(dist.resolve("systemd")), Files.list(dist.resolve("systemd/examples")))) {
      for (Path u : (Iterable<Path>) s::iterator) {
        String name = u.getFileName().toString();
        if (name.endsWith(".service") || name.endsWith(".mount")) {
          Files.writeString(units.resolve(name), Files.readString(u)
              .replace("/usr/local/bin/lazypull", prefix.resolve("bin/lazypull").toString()));
        }
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

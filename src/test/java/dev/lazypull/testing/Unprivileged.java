package dev.lazypull.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Set;

/**
 * Runs the built jar as nobody (uid/gid 65534, through setpriv), as an unprivileged user would.
 *
 * <p>nobody must be able to reach the jar and the test's files, and the checkout may sit where it
 * cannot: root's home is mode 0700, so in a clone at /root/lazypull nobody can read neither
 * target/lazypull.jar nor target/vm-work. So these tests keep their files in a temp dir opened to
 * others (under java.io.tmpdir, /tmp by default) and run a copy of the jar staged there.
 */
public final class Unprivileged {
  public static final int NOBODY = 65534;

  private Unprivileged() {}

  /** The command prefix that runs what follows as nobody, with no supplementary groups. */
  public static List<String> asNobody() {
    Requirements.requireTool("setpriv");
    return List.of("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY, "--clear-groups");
  }

  /**
   * Opens {@code dir} to others (adds r-x for group and others) and checks that every directory
   * above it lets others pass; a clear failure if one does not (java.io.tmpdir pointed into a
   * private directory).
   */
  public static Path openToOthers(Path dir) throws IOException {
    Path real = dir.toRealPath();
    Set<PosixFilePermission> perms = Files.getPosixFilePermissions(real);
    perms.addAll(PosixFilePermissions.fromString("---r-xr-x"));
    Files.setPosixFilePermissions(real, perms);
    for (Path p = real.getParent(); p != null; p = p.getParent()) {
      if (!Files.getPosixFilePermissions(p).contains(PosixFilePermission.OTHERS_EXECUTE)) {
        throw new AssertionError(
            "nobody cannot reach "
                + real
                + ": "
                + p
                + " is mode "
                + PosixFilePermissions.toString(Files.getPosixFilePermissions(p))
                + "; give the tests a java.io.tmpdir that others can traverse (the default /tmp can)");
      }
    }
    return real;
  }

  /**
   * Copies the built jar into {@code dir} (opened to others first) and returns the copy, readable
   * by nobody.
   */
  public static Path stageJar(Path dir) throws IOException {
    Path copy = openToOthers(dir).resolve("lazypull.jar");
    Files.copy(VmHarness.jar(), copy, StandardCopyOption.REPLACE_EXISTING);
    Files.setPosixFilePermissions(copy, PosixFilePermissions.fromString("rw-r--r--"));
    return copy;
  }
}

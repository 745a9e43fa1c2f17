package dev.lazypull.testing;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Mounts an NBD export with the host kernel without nbd.ko: nbdfuse exposes the export as a file,
 * and {@code mount -t erofs} mounts that file on a loop device. Mount, the checks and the unmount
 * run in one shell command (a mount made by one process may be invisible to others on this host),
 * and everything is undone whatever happens.
 */
public final class NbdFuseMount {
  private NbdFuseMount() {}

  public static void require() {
    Requirements.requireRoot();
    Requirements.requireTool("nbdfuse");
    Requirements.requireTool("fusermount3");
  }

  /**
   * Mounts the export on unix socket {@code socket} under {@code work/mnt-NAME}, runs {@code body}
   * (bash) in the mount point and returns its output; the test fails if mounting or {@code body}
   * fails.
   */
  public static String run(Path work, Path socket, String name, String body) throws Exception {
    Path fm = Files.createDirectories(work.resolve("fuse-" + name));
    Path mnt = Files.createDirectories(work.resolve("mnt-" + name));
    String script =
        String.join(
            "\n",
            "set -u",
            "nbdfuse -r '" + fm + "/disk' --unix '" + socket + "' & F=$!",
            // Leave the mount before unmounting; never wait forever for nbdfuse.
            "cleanup() { cd /; umount '"
                + mnt
                + "' 2>/dev/null; fusermount3 -u '"
                + fm
                + "' 2>/dev/null;",
            "  for i in $(seq 100); do kill -0 $F 2>/dev/null || return 0; sleep 0.05; done; kill $F; }",
            "trap cleanup EXIT",
            "for i in $(seq 200); do [ -f '" + fm + "/disk' ] && break; sleep 0.05; done",
            "mount -t erofs -o ro '" + fm + "/disk' '" + mnt + "' || exit 1",
            "cd '" + mnt + "'",
            body);
    return Requirements.run("bash", "-c", script);
  }

  /**
   * A writable export as a file on this host: nbdfuse (read-write) exposes it under {@code
   * work/fuse-NAME/disk}, then {@code body} (bash) runs with {@code $DISK} naming that file and
   * {@code $MNT} an empty directory it may mount on (with {@code -o loop}: the loop device goes
   * with the unmount). Whatever happens, {@code $MNT} is unmounted, the loop device detached and
   * nbdfuse stopped, which ends its NBD connections (after a flush). Returns the body's output; the
   * test fails if the body fails.
   */
  public static String runWritable(Path work, Path socket, String name, String body)
      throws Exception {
    Path fm = Files.createDirectories(work.resolve("fuse-" + name));
    Path mnt = Files.createDirectories(work.resolve("mnt-" + name));
    String script =
        String.join(
            "\n",
            "set -eu",
            "export DISK='" + fm + "/disk' MNT='" + mnt + "'",
            "nbdfuse \"$DISK\" --unix '" + socket + "' & F=$!",
            "cleanup() { cd /; if mountpoint -q \"$MNT\"; then umount \"$MNT\"; fi;",
            "  for l in $(losetup -j \"$DISK\" -O NAME -n 2>/dev/null); do losetup -d $l; done;",
            "  fusermount3 -u '" + fm + "' 2>/dev/null || true;",
            "  for i in $(seq 200); do kill -0 $F 2>/dev/null || return 0; sleep 0.05; done; kill $F; }",
            "trap cleanup EXIT",
            "for i in $(seq 200); do [ -f \"$DISK\" ] && break; sleep 0.05; done",
            "[ -f \"$DISK\" ] || { echo 'nbdfuse did not start'; exit 1; }",
            body);
    return Requirements.run("bash", "-c", script);
  }
}

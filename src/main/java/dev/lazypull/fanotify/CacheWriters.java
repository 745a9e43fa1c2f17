package dev.lazypull.fanotify;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Tells another lazypull process's cache write from a reader. A write to a marked file raises a
 * pre-content event too, with the writer's pid, and the writer — which holds the claim on the range
 * while it fetches — waits for the answer: waiting for its claim in turn would deadlock. Only
 * lazypull processes open a blob's claims file (root-only, in the 0700 cache), so a process that
 * has it open is one of the cache's writers, and whatever it accesses is either what it is writing
 * or what it has already made present.
 */
final class CacheWriters {
  private CacheWriters() {}

  /**
   * Whether process {@code pid} has {@code claimsFile} open (reads {@code /proc/PID/fd}: not on
   * event threads).
   */
  static boolean hasOpen(int pid, Path claimsFile) {
    if (pid <= 0) {
      return false;
    }
    Path want = claimsFile.toAbsolutePath().normalize();
    try (DirectoryStream<Path> fds =
        Files.newDirectoryStream(Path.of("/proc", Integer.toString(pid), "fd"))) {
      for (Path fd : fds) {
        try {
          if (Files.readSymbolicLink(fd).equals(want)) {
            return true;
          }
        } catch (IOException e) {
          // closed while we looked
        }
      }
    } catch (IOException e) {
      return false; // gone, or not ours to look at
    }
    return false;
  }
}

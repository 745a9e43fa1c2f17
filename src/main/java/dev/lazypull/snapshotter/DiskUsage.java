package dev.lazypull.snapshotter;

import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Posix;
import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashSet;
import java.util.Set;

/**
 * What a directory tree occupies, as containerd's {@code fs.DiskUsage} counts it: allocated blocks
 * (sparse holes cost nothing) and inodes, each hard-linked inode once. Does not cross into other
 * mounts.
 */
final class DiskUsage {
  private DiskUsage() {}

  static SnapshotUsage of(Path root) throws IOException {
    long[] totals = new long[2];
    Set<Object> seen = new HashSet<>();
    Object rootDev = Files.getAttribute(root, "unix:dev");
    Files.walkFileTree(
        root,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs)
              throws IOException {
            if (!dir.equals(root)
                && !rootDev.equals(
                    Files.getAttribute(dir, "unix:dev", LinkOption.NOFOLLOW_LINKS))) {
              return FileVisitResult.SKIP_SUBTREE;
            }
            count(dir, attrs);
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult visitFile(Path file, BasicFileAttributes attrs)
              throws IOException {
            count(file, attrs);
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
            if (e instanceof NoSuchFileException) {
              return FileVisitResult.CONTINUE; // removed while we walked
            }
            throw e;
          }

          private void count(Path p, BasicFileAttributes attrs) throws IOException {
            if (!seen.add(attrs.fileKey())) {
              return;
            }
            totals[1]++;
            try {
              totals[0] += Posix.allocatedBytes(p.toString());
            } catch (ErrnoException e) {
              if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
                return;
              }
              throw e;
            }
          }
        });
    return new SnapshotUsage(totals[0], totals[1]);
  }
}

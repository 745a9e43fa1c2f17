package dev.lazypull.pack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.cli.Main;
import dev.lazypull.erofs.ByteSource;
import dev.lazypull.erofs.ErofsReader;
import dev.lazypull.erofs.ImageSummary;
import dev.lazypull.testing.ErofsMounts;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.SyntheticTree;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Images written by `lazypull pack`, mounted by the host kernel: with each data blob on a loop device
 * ({@code device=}) and as one flattened file (no {@code device=}: the kernel's flatdev mode, Linux ≥ 6.4).
 * Every entry's bytes, type, mode, owner, mtime, link target, device numbers, hard-link identity and xattrs
 * must match the source tree; fsck.erofs must pass and dump.erofs must agree with our reader's counts.
 */
class PackMountIT {
  @TempDir Path tmp;

  @Test
  void syntheticTreeWithEveryInodeTypeMountsIdentically() throws Exception {
    ErofsMounts.requireKernelMounts();
    Requirements.requireTool("setcap");
    Path tree = SyntheticTree.create(tmp.resolve("tree"), true);
    String expected = ErofsMounts.list(tree);
    assertTrue(expected.contains("security.capability="), "the tree has a file capability");
    Path layout = tmp.resolve("layout");
    assertEquals(0, Main.run("pack", tree.toString(), "--output", "oci:" + layout + ":syn"));
    List<Path> files = ErofsMounts.files(layout, "syn");
    checkMountsAndTools(files, expected, "synthetic");
  }

  @Test
  void realJdkTreeMountsIdenticallyAcrossSeveralBlobs() throws Exception {
    ErofsMounts.requireKernelMounts();
    Path jdk = Path.of("/usr/lib/jvm/java-17-openjdk-amd64");
    Requirements.require(Files.isDirectory(jdk), jdk + " (openjdk-17-jdk-headless)");
    String expected = ErofsMounts.list(jdk);
    Path layout = tmp.resolve("layout");
    // A 64 MiB cap splits the data into several blobs: several loop devices, several flat extents.
    assertEquals(0, Main.run("pack", jdk.toString(), "--blob-size-cap", "64M", "--output", "oci:" + layout + ":jdk"));
    List<Path> files = ErofsMounts.files(layout, "jdk");
    assertTrue(files.size() >= 4, "several data blobs: " + files.size());
    checkMountsAndTools(files, expected, "jdk");
  }

  private void checkMountsAndTools(List<Path> files, String expected, String what) throws Exception {
    Path boot = files.get(0);
    List<Path> blobs = files.subList(1, files.size());
    ErofsMounts.assertSameListing(expected, ErofsMounts.listWithDevices(boot, blobs, tmp.resolve("mnt")),
        what + " mounted with device=");
    Path flat = ErofsMounts.flatten(files, tmp.resolve("flat.img"));
    ErofsMounts.assertSameListing(expected, ErofsMounts.listFlat(flat, tmp.resolve("mnt")), what + " flattened");
    Files.delete(flat);

    List<String> fsck = new ArrayList<>(List.of("fsck.erofs"));
    List<String> dump = new ArrayList<>(List.of("dump.erofs"));
    for (Path b : blobs) {
      fsck.add("--device=" + b);
      dump.add("--device=" + b);
    }
    fsck.add(boot.toString());
    Requirements.run(fsck.toArray(String[]::new));
    dump.add("-S");
    dump.add(boot.toString());
    String stats = Requirements.run(dump.toArray(String[]::new));
    // dump.erofs -S counts per path (a hard link counts once per name); -s gives the distinct inode count.
    long[] perPath = new long[6];
    ImageSummary summary;
    try (FileChannel ch = FileChannel.open(boot)) {
      ErofsReader reader = ErofsReader.open(ByteSource.of(ch));
      summary = ImageSummary.of(reader);
      reader.walk((path, inode) -> {
        perPath[0]++;
        switch (inode.type()) {
          case REGULAR -> {
            perPath[1]++;
            perPath[4] += inode.size();
          }
          case DIRECTORY -> perPath[2]++;
          case SYMLINK -> perPath[3]++;
          default -> perPath[5]++;
        }
      });
    }
    assertEquals(perPath[0], count(stats, "total file count"), "paths vs dump.erofs -S");
    assertEquals(perPath[1], count(stats, "regular file count"));
    assertEquals(perPath[2], count(stats, "directory count"));
    assertEquals(perPath[3], count(stats, "symlink file count"));
    assertEquals(perPath[4], count(stats, "total original file size"));
    dump.set(dump.size() - 2, "-s");
    assertEquals(summary.inodes(), count(Requirements.run(dump.toArray(String[]::new)), "inode count"),
        "distinct inodes vs dump.erofs -s");
  }

  private static long count(String dump, String label) {
    Matcher m = Pattern.compile(Pattern.quote(label) + ":\\s+(\\d+)").matcher(dump);
    assertTrue(m.find(), "dump.erofs printed no '" + label + "':\n" + dump);
    return Long.parseLong(m.group(1));
  }
}

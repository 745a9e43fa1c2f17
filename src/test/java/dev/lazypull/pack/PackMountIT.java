package dev.lazypull.pack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.cli.Main;
import dev.lazypull.erofs.ByteSource;
import dev.lazypull.erofs.ErofsReader;
import dev.lazypull.erofs.ImageSummary;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.testing.ErofsMounts;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.SyntheticTree;
import dev.lazypull.testing.TarBytes;
import dev.lazypull.testing.TestImages;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Images written by `lazypull pack`, mounted by the host kernel: with each data blob on a loop
 * device ({@code device=}) and as one flattened file (no {@code device=}: the kernel's flatdev
 * mode, Linux ≥ 6.4). Every entry's bytes, type, mode, owner, mtime, link target, device numbers,
 * hard-link identity and xattrs must match the source tree; fsck.erofs must pass and dump.erofs
 * must agree with our reader's counts.
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
    assertEquals(
        0,
        Main.run(
            "pack",
            jdk.toString(),
            "--blob-size-cap",
            "64M",
            "--output",
            "oci:" + layout + ":jdk"));
    List<Path> files = ErofsMounts.files(layout, "jdk");
    assertTrue(files.size() >= 4, "several data blobs: " + files.size());
    checkMountsAndTools(files, expected, "jdk");
  }

  /**
   * Hard links of every inode type (regular file, fifo, symlink, char and block device, socket)
   * stay one inode with its link count, through {@code pack} (compressed and raw) and {@code
   * convert} (a tar with hard-link members), mounted by the kernel with {@code device=} and
   * flattened: the listings compare nlink and the hard-link group (the first path sharing the inode
   * number) of every entry.
   */
  @Test
  void hardLinksOfEveryInodeTypeStayOneInode() throws Exception {
    ErofsMounts.requireKernelMounts();
    Requirements.requireTool("tar");
    Path tree = tmp.resolve("links");
    Files.createDirectories(tree);
    String sh =
        "set -euo pipefail\ncd '"
            + tree
            + "'\nmkdir -p a/b c\n"
            + "echo data > file; ln file a/file2; ln file c/file3\n"
            + "mkfifo fifo; ln fifo a/fifo2; ln fifo a/b/fifo3\n"
            + "ln -s file sym; ln -P sym a/sym2; ln -P sym c/sym3\n"
            + "mknod chr c 1 3; ln chr a/chr2\nmknod blk b 7 0; ln blk c/blk2\n"
            + "find . -mindepth 1 ! -type l -exec touch -h -d @1600000000 {} +\n";
    Requirements.run("bash", "-c", sh);
    String expected = ErofsMounts.list(tree);
    assertTrue(expected.contains("\t3\t./a/b/fifo3\t"), "a fifo with three names: " + expected);
    assertTrue(expected.contains("\t3\t./a/sym2\tfile"), "a symlink with three names: " + expected);
    assertTrue(expected.contains("\t2\t./a/chr2\t"), "a char device with two names: " + expected);
    Path layout = tmp.resolve("layout");
    for (String compression : List.of("zstd", "none")) {
      assertEquals(
          0,
          Main.run(
              "pack",
              tree.toString(),
              "--compression",
              compression,
              "--output",
              "oci:" + layout + ":" + compression));
      checkMounts(
          ErofsMounts.files(layout, compression), expected, "pack --compression " + compression);
    }
    // convert: GNU tar records hard links of regular files and symlinks only, so the layer is
    // written by hand with
    // hard-link members to every type, as container tools (Go's archive/tar users) write them
    byte[] none = new byte[0];
    Function<String, byte[]> u = x -> x.getBytes(StandardCharsets.UTF_8);
    byte[] layer =
        new TarBytes()
            .entry(u.apply("./"), '5', none, none)
            .entry(u.apply("a/"), '5', none, none)
            .entry("file", '0', "data\n")
            .entry(u.apply("a/file2"), '1', none, u.apply("file"))
            .entry(u.apply("fifo"), '6', none, none)
            .entry(u.apply("a/fifo2"), '1', none, u.apply("fifo"))
            .entry(u.apply("a/fifo3"), '1', none, u.apply("a/fifo2"))
            .symlink("sym", "file")
            .entry(u.apply("a/sym2"), '1', none, u.apply("sym"))
            .entry(u.apply("chr"), '3', none, none)
            .entry(u.apply("a/chr2"), '1', none, u.apply("chr"))
            .entry(u.apply("blk"), '4', none, none)
            .entry(u.apply("a/blk2"), '1', none, u.apply("blk"))
            .end();
    Path tar = tmp.resolve("links.tar");
    Files.write(tar, layer);
    TestImages.write(
        tmp.resolve("src"),
        "v1",
        List.of(new TestImages.Layer(tar, tar, MediaTypes.OCI_LAYER_TAR)));
    assertEquals(
        0, Main.run("convert", "oci:" + tmp.resolve("src") + ":v1", "oci:" + layout + ":conv"));
    Path flat = ErofsMounts.flatten(ErofsMounts.files(layout, "conv"), tmp.resolve("conv.img"));
    Path mnt = Files.createDirectories(tmp.resolve("mnt"));
    String stat =
        Requirements.run(
            "bash",
            "-c",
            "set -euo pipefail\ntrap \"umount '"
                + mnt
                + "' 2>/dev/null || "
                + "true\" EXIT\nmount -t erofs -o ro '"
                + flat
                + "' '"
                + mnt
                + "'\n(cd '"
                + mnt
                + "' && "
                + "stat -c '%n %h %i %F' file a/file2 fifo a/fifo2 a/fifo3 sym a/sym2 chr a/chr2 blk a/blk2)\n");
    Map<String, String[]> st = new HashMap<>();
    for (String line : stat.strip().split("\n")) {
      String[] f = line.split(" ", 4);
      st.put(f[0], f);
    }
    for (String[] group :
        new String[][] {
          {"file", "a/file2"},
          {"fifo", "a/fifo2", "a/fifo3"},
          {"sym", "a/sym2"},
          {"chr", "a/chr2"},
          {"blk", "a/blk2"}
        }) {
      for (String name : group) {
        assertEquals(
            String.valueOf(group.length), st.get(name)[1], "nlink of " + name + ":\n" + stat);
        assertEquals(st.get(group[0])[2], st.get(name)[2], "inode of " + name + ":\n" + stat);
      }
    }
    assertTrue(stat.contains("fifo 3 ") && stat.contains("fifo"), stat);
  }

  private void checkMounts(List<Path> files, String expected, String what) throws Exception {
    ErofsMounts.assertSameListing(
        expected,
        ErofsMounts.listWithDevices(
            files.get(0), files.subList(1, files.size()), tmp.resolve("mnt")),
        what + " mounted with device=");
    Path flat = ErofsMounts.flatten(files, tmp.resolve("flat.img"));
    ErofsMounts.assertSameListing(
        expected, ErofsMounts.listFlat(flat, tmp.resolve("mnt")), what + " flattened");
    Files.delete(flat);
  }

  private void checkMountsAndTools(List<Path> files, String expected, String what)
      throws Exception {
    Path boot = files.get(0);
    List<Path> blobs = files.subList(1, files.size());
    ErofsMounts.assertSameListing(
        expected,
        ErofsMounts.listWithDevices(boot, blobs, tmp.resolve("mnt")),
        what + " mounted with device=");
    Path flat = ErofsMounts.flatten(files, tmp.resolve("flat.img"));
    ErofsMounts.assertSameListing(
        expected, ErofsMounts.listFlat(flat, tmp.resolve("mnt")), what + " flattened");
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
    // dump.erofs -S counts per path (a hard link counts once per name); -s gives the distinct inode
    // count.
    long[] perPath = new long[6];
    ImageSummary summary;
    try (FileChannel ch = FileChannel.open(boot)) {
      ErofsReader reader = ErofsReader.open(ByteSource.of(ch));
      summary = ImageSummary.of(reader);
      reader.walk(
          (path, inode) -> {
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
    assertEquals(
        summary.inodes(),
        count(Requirements.run(dump.toArray(String[]::new)), "inode count"),
        "distinct inodes vs dump.erofs -s");
  }

  private static long count(String dump, String label) {
    Matcher m = Pattern.compile(Pattern.quote(label) + ":\\s+(\\d+)").matcher(dump);
    assertTrue(m.find(), "dump.erofs printed no '" + label + "':\n" + dump);
    return Long.parseLong(m.group(1));
  }
}

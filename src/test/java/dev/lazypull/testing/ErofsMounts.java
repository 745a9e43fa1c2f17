package dev.lazypull.testing;

import static org.junit.jupiter.api.Assertions.fail;

import dev.lazypull.blob.ImageSource;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.compress.ZstdCodec;
import dev.lazypull.erofs.FlatLayout;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.LazyImage;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Mounts EROFS images with the host kernel and lists them with src/test/sh/tree-listing.sh. Mount,
 * listing and umount happen inside one shell command: on this host mounts made by one command may
 * not be visible to others.
 */
public final class ErofsMounts {
  private ErofsMounts() {}

  public static Path listingScript() {
    return VmHarness.baseDir().resolve("src/test/sh/tree-listing.sh");
  }

  public static void requireKernelMounts() {
    Requirements.requireRoot();
    Requirements.requireTool("losetup");
    Requirements.requireTool("getfattr");
    Requirements.require(
        Files.isRegularFile(Path.of("/sys/fs/erofs/features/chunked_file"))
            || Files.isDirectory(Path.of("/sys/fs/erofs")),
        "EROFS in the host kernel");
  }

  /**
   * The canonical listing of a source tree, the expectation for an image of it: link counts are
   * those inside the tree (an outside hard link, such as perf's build-id cache linking a dpkg file
   * into ~/.debug, is not part of the tree and no image can hold it).
   */
  public static String list(Path dir) throws IOException, InterruptedException {
    return Requirements.run("bash", listingScript().toString(), dir.toString(), "--links-in-tree");
  }

  /**
   * Mounts {@code bootstrap} with each blob on a read-only loop device as {@code device=} and lists
   * it.
   */
  public static String listWithDevices(Path bootstrap, List<Path> blobs, Path mnt)
      throws IOException, InterruptedException {
    Files.createDirectories(mnt);
    StringBuilder sh =
        new StringBuilder("set -euo pipefail\nloops=()\n")
            .append("cleanup() { umount '")
            .append(mnt)
            .append("' 2>/dev/null || true; ")
            .append(
                "for l in \"${loops[@]}\"; do losetup -d \"$l\"; done; }\ntrap cleanup EXIT\nopts=ro\n");
    for (Path b : blobs) {
      sh.append("l=$(losetup -f --show -r '")
          .append(b)
          .append("'); loops+=(\"$l\"); opts=\"$opts,device=$l\"\n");
    }
    sh.append("mount -t erofs -o \"$opts\" '")
        .append(bootstrap)
        .append("' '")
        .append(mnt)
        .append("'\n")
        .append("bash '")
        .append(listingScript())
        .append("' '")
        .append(mnt)
        .append("'\n");
    return Requirements.run("bash", "-c", sh.toString());
  }

  /** Mounts a flattened image file (no device= options: the kernel's flatdev mode) and lists it. */
  public static String listFlat(Path flat, Path mnt) throws IOException, InterruptedException {
    Files.createDirectories(mnt);
    String sh =
        "set -euo pipefail\ntrap \"umount '"
            + mnt
            + "' 2>/dev/null || true\" EXIT\n"
            + "mount -t erofs -o ro '"
            + flat
            + "' '"
            + mnt
            + "'\nbash '"
            + listingScript()
            + "' '"
            + mnt
            + "'\n";
    return Requirements.run("bash", "-c", sh);
  }

  /**
   * The local files of an image in an OCI layout: bootstrap first, then its devices. A raw data
   * blob is its device; a compressed one is decompressed entry by entry through its chunk digest
   * table (each entry verified) into {@code LAYOUT-devices/HEX}, the bytes the kernel must see.
   */
  public static List<Path> files(Path layout, String tag) throws IOException {
    ImageSource src = ImageSources.localOnly().open("oci:" + layout + ":" + tag);
    LazyImage img = src.resolve();
    List<Path> out = new ArrayList<>();
    out.add(layout.resolve("blobs/sha256").resolve(img.bootstrap().digest().hex()));
    for (int i = 0; i < img.blobs().size(); i++) {
      Descriptor d = img.blobs().get(i);
      Path stored = layout.resolve("blobs/sha256").resolve(d.digest().hex());
      if (!LazyImage.isCompressed(d)) {
        out.add(stored);
        continue;
      }
      Descriptor t = img.chunkTable(i);
      ChunkDigestTable table = ChunkDigestTable.decode(src.readRange(t, 0, (int) t.size()), d);
      Path device =
          Files.createDirectories(layout.resolveSibling(layout.getFileName() + "-devices"))
              .resolve(d.digest().hex());
      ByteBuffer frame =
          ByteBuffer.allocateDirect(
              table.size() == 0 ? 1 : (int) ZstdCodec.maxFrameLength(table.maxLength()));
      ByteBuffer data = ByteBuffer.allocateDirect(Math.max(1, table.maxLength()));
      try (FileChannel in = FileChannel.open(stored);
          FileChannel o =
              FileChannel.open(
                  device,
                  StandardOpenOption.CREATE,
                  StandardOpenOption.TRUNCATE_EXISTING,
                  StandardOpenOption.WRITE)) {
        for (int e = 0; e < table.size(); e++) {
          frame.clear().limit(table.compressedLength(e));
          while (frame.hasRemaining()) {
            if (in.read(frame, table.compressedOffset(e) + frame.position()) < 0) {
              throw new IOException(stored + " ends early");
            }
          }
          table.unpack(e, frame.flip(), data.clear());
          data.flip();
          long at = table.offset(e);
          while (data.hasRemaining()) {
            at += o.write(data, at);
          }
        }
      }
      out.add(device);
    }
    return out;
  }

  /**
   * Writes the flattened device (bootstrap at 0, each blob at its slot's mapped_blkaddr, zeros
   * between).
   */
  public static Path flatten(List<Path> files, Path out) throws IOException {
    List<Long> sizes = new ArrayList<>();
    for (Path p : files.subList(1, files.size())) {
      sizes.add(Files.size(p));
    }
    FlatLayout layout = FlatLayout.compute(Files.size(files.get(0)), sizes);
    try (FileChannel o =
        FileChannel.open(
            out,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE)) {
      copy(files.get(0), o, 0);
      for (FlatLayout.Extent e : layout.blobs()) {
        copy(files.get(e.index() + 1), o, e.startByte());
      }
    }
    try (RandomAccessFile f = new RandomAccessFile(out.toFile(), "rw")) {
      f.setLength(layout.deviceSize());
    }
    return out;
  }

  private static void copy(Path from, FileChannel to, long at) throws IOException {
    try (FileChannel in = FileChannel.open(from)) {
      long done = 0;
      long size = in.size();
      while (done < size) {
        done += in.transferTo(done, size - done, to.position(at + done));
      }
    }
  }

  /** Fails with the first differing lines when two listings differ. */
  public static void assertSameListing(String expected, String actual, String what) {
    if (expected.equals(actual)) {
      return;
    }
    String[] e = expected.split("\n");
    String[] a = actual.split("\n");
    StringBuilder sb =
        new StringBuilder(
            what + ": listings differ (" + e.length + " vs " + a.length + " lines)\n");
    int shown = 0;
    for (int i = 0; i < Math.max(e.length, a.length) && shown < 10; i++) {
      String x = i < e.length ? e[i] : "<none>";
      String y = i < a.length ? a[i] : "<none>";
      if (!x.equals(y)) {
        sb.append("  expected: ").append(x).append("\n  actual:   ").append(y).append('\n');
        shown++;
      }
    }
    fail(sb.toString());
  }
}

package dev.lazypull.erofs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.cli.Main;
import dev.lazypull.testing.Requirements;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Images made by mkfs.erofs with EROFS's own compression (lz4/lz4hc; full and compacted indexes,
 * big pclusters, inline tail pclusters): the reader walks them, and the stored ranges it reports
 * for every compressed file are exactly the physical extents dump.erofs reports (for flat files,
 * they cover them).
 */
class ErofsCompressedTest {
  @TempDir Path tmp;

  private Path tree() throws Exception {
    Path t = Files.createDirectories(tmp.resolve("tree"));
    Random r = new Random(11);
    int[] sizes = {0, 1, 100, 4095, 4097, 5000, 9000, 70_000, 300_001, 1_300_000};
    for (int size : sizes) {
      StringBuilder sb = new StringBuilder();
      while (sb.length() < size) {
        sb.append("row ").append(r.nextInt(50_000)).append(" some repeated words of text\n");
      }
      Files.writeString(t.resolve("text-" + size + ".txt"), sb.substring(0, size));
    }
    byte[] random = new byte[200_000];
    r.nextBytes(random);
    Files.write(t.resolve("random.bin"), random);
    Files.write(t.resolve("zeros.bin"), new byte[300_000]);
    byte[] mixed = new byte[500_000];
    for (int i = 0; i < mixed.length; i += 50_000) {
      byte[] part = new byte[25_000];
      r.nextBytes(part);
      System.arraycopy(part, 0, mixed, i, part.length);
    }
    Files.write(t.resolve("sub-mixed.bin"), mixed);
    Files.createDirectories(t.resolve("dir/deeper"));
    Files.writeString(t.resolve("dir/deeper/small.txt"), "x".repeat(12_345));
    Files.createSymbolicLink(t.resolve("link"), Path.of("text-100.txt"));
    return t;
  }

  private record Ext(long offset, long length) implements Comparable<Ext> {
    @Override
    public int compareTo(Ext o) {
      return offset != o.offset ? Long.compare(offset, o.offset) : Long.compare(length, o.length);
    }
  }

  private static final Pattern EXTENT =
      Pattern.compile(
          "^\\s*\\d+:\\s+\\d+\\.\\.\\s*\\d+\\s*\\|\\s*\\d+\\s*:\\s*(\\d+)\\.\\.\\s*(\\d+)\\s*\\|\\s*(\\d+)\\s*$",
          Pattern.MULTILINE);

  private static TreeSet<Ext> dumpExtents(Path image, String path) throws Exception {
    String out = Requirements.run("dump.erofs", "-e", "--path=/" + path, image.toString());
    TreeSet<Ext> set = new TreeSet<>();
    Matcher m = EXTENT.matcher(out);
    while (m.find()) {
      set.add(new Ext(Long.parseLong(m.group(1)), Long.parseLong(m.group(3))));
    }
    return set;
  }

  @Test
  void compressedInodesMapToTheExtentsDumpErofsReports() throws Exception {
    Requirements.requireTool("mkfs.erofs");
    Requirements.requireTool("dump.erofs");
    Path t = tree();
    List<String[]> variants =
        List.of(
            new String[] {"-zlz4"},
            new String[] {"-zlz4hc"},
            new String[] {"-zlz4hc,12", "-C65536"},
            new String[] {"-zlz4", "-Eztailpacking"},
            new String[] {"-zlz4hc", "-C16384", "-Eztailpacking"},
            new String[] {"-zlz4", "-Elegacy-compress"},
            new String[] {"-zlz4hc", "-C131072", "-Elegacy-compress"},
            new String[] {"-zlz4", "-Eforce-inode-extended"});
    int compressedSeen = 0;
    int fullSeen = 0;
    int inlineTails = 0;
    for (String[] v : variants) {
      Path image = tmp.resolve("img-" + String.join("", v).replaceAll("[^a-z0-9]", "") + ".erofs");
      List<String> cmd = new ArrayList<>(List.of("mkfs.erofs", "--quiet", "-T0"));
      cmd.addAll(List.of(v));
      cmd.addAll(List.of(image.toString(), t.toString()));
      Requirements.run(cmd.toArray(String[]::new));
      try (FileChannel ch = FileChannel.open(image)) {
        ErofsReader reader = ErofsReader.open(ByteSource.of(ch));
        ImageSummary summary = ImageSummary.of(reader);
        assertEquals(14, summary.regularFiles(), String.join(" ", v));
        assertTrue(summary.compressedFiles() > 5, String.join(" ", v) + ": " + summary);
        List<Object[]> files = new ArrayList<>();
        reader.walk(
            (path, inode) -> {
              if (inode.type() == FileType.REGULAR) {
                files.add(new Object[] {new String(path, StandardCharsets.UTF_8), inode});
              }
            });
        for (Object[] f : files) {
          String path = (String) f[0];
          ErofsReader.Inode inode = (ErofsReader.Inode) f[1];
          List<ErofsReader.Extent> visited = new ArrayList<>();
          reader.forEachDataExtent(inode, visited::add);
          TreeSet<Ext> got = new TreeSet<>();
          long stored = 0;
          for (ErofsReader.Extent e : visited) {
            assertEquals(0, e.device(), path);
            assertTrue(e.offset() >= 0 && e.offset() + e.length() <= ch.size(), path + ": " + e);
            got.add(new Ext(e.offset(), e.length()));
            stored += e.length();
          }
          // the merged list covers the same bytes
          long merged = 0;
          for (ErofsReader.Extent e : reader.dataExtents(inode)) {
            merged += e.length();
          }
          assertEquals(stored, merged, path);
          TreeSet<Ext> want = inode.size() == 0 ? new TreeSet<>() : dumpExtents(image, path);
          String what =
              String.join(" ", v) + " " + path + " (layout " + inode.record().layout() + ")";
          if (ErofsReader.isCompressed(inode.record())) {
            compressedSeen++;
            if (inode.record().layout() == InodeRecord.COMPRESSED_FULL) {
              fullSeen++;
            }
            // dump.erofs lists logical extents; several may share one pcluster
            assertEquals(want, got, what);
            assertTrue(stored < inode.size() || inode.size() < 8192, what + ": stored " + stored);
            for (Ext e : got) {
              if (e.offset % 4096 != 0) {
                inlineTails++;
              }
            }
          } else {
            for (Ext w : want) {
              // flat blocks are reported up to the file size, dump.erofs counts the padded last
              // block
              assertTrue(
                  got.stream()
                      .anyMatch(
                          g ->
                              g.offset <= w.offset
                                  && w.offset + w.length
                                      <= g.offset + (g.length + 4095) / 4096 * 4096),
                  what + ": " + w + " not covered by " + got);
            }
          }
        }
      }
    }
    assertTrue(compressedSeen > 40, "compressed inodes checked: " + compressedSeen);
    assertTrue(fullSeen > 5, "full-index inodes checked: " + fullSeen);
    assertTrue(inlineTails > 0, "inline tail pclusters checked: " + inlineTails);
  }

  @Test
  void inspectSummarizesAnImportedCompressedImage() throws Exception {
    Requirements.requireTool("mkfs.erofs");
    Path t = tree();
    Path image = tmp.resolve("z.erofs");
    Requirements.run(
        "mkfs.erofs", "--quiet", "-T0", "-zlz4hc", "-C65536", image.toString(), t.toString());
    String ref = "oci:" + tmp.resolve("layout") + ":z";
    assertEquals(0, Main.run("import", image.toString(), "--output", ref));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream oldOut = System.out;
    PrintStream oldErr = System.err;
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      assertEquals(0, Main.run("inspect", ref));
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
    String text = out.toString(StandardCharsets.UTF_8);
    assertTrue(text.contains("14 regular files"), text + err);
    assertTrue(text.contains("files compressed by EROFS"), text);
    assertEquals("", err.toString(StandardCharsets.UTF_8));
  }
}

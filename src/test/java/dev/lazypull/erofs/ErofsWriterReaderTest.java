package dev.lazypull.erofs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The writer's output read back by our reader; the reader fed thousands of corrupted images. */
class ErofsWriterReaderTest {
  @TempDir Path tmp;

  private static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static ErofsNode node(FileType t, long mtime) {
    ErofsNode n = new ErofsNode(t);
    n.permissions = 0644;
    n.mtimeSec = mtime;
    return n;
  }

  /** A tree whose file data "lives" in two declared blobs (only the bootstrap is written). */
  static ErofsNode tree() {
    ErofsNode root = node(FileType.DIRECTORY, 100);
    root.permissions = 0755;
    ErofsNode many = node(FileType.DIRECTORY, 100);
    root.put(b("many"), many);
    for (int i = 0; i < 500; i++) {
      ErofsNode f = node(FileType.REGULAR, 100);
      f.size = 10 + i;
      f.chunks = new long[] {ErofsNode.chunkLocation(1, i)};
      many.put(b(String.format("file-with-a-long-name-%04d", i)), f);
    }
    ErofsNode huge = node(FileType.REGULAR, 200); // own mtime and > 4 GiB: extended
    huge.size = (5L << 30) + 7;
    huge.chunks = new long[5121];
    for (int i = 0; i < huge.chunks.length; i++) {
      huge.chunks[i] = i % 3 == 0 ? ErofsNode.HOLE : ErofsNode.chunkLocation(2, (i % 7) * 256L);
    }
    huge.uid = 70000;
    root.put(b("huge"), huge);
    root.put(b("hardlink-a"), many.child(b("file-with-a-long-name-0001")));
    for (int len : new int[] {1, 3000, 4030, 4095}) {
      ErofsNode s = node(FileType.SYMLINK, 100);
      s.linkTarget = b("t".repeat(len));
      root.put(b("sym" + len), s);
    }
    ErofsNode dev = node(FileType.CHAR_DEVICE, 100);
    dev.rdevMajor = 10;
    dev.rdevMinor = 300;
    root.put(b("dev"), dev);
    ErofsNode fifo = node(FileType.FIFO, 100);
    fifo.xattrs = Map.of("user.a", b("1"), "security.capability", new byte[20]);
    root.put(b("fifo"), fifo);
    root.put(b("n".repeat(255)), node(FileType.REGULAR, 100));
    return root;
  }

  static byte[] write(ErofsNode root, Path file) throws IOException {
    try (FileChannel ch =
        FileChannel.open(
            file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      ErofsWriter.write(
          root,
          new ErofsWriter.Options(20, 100, 0),
          List.of(
              new ErofsWriter.Device("a".repeat(64), 600L << 12),
              new ErofsWriter.Device("b".repeat(64), 2000L << 12)),
          ch);
    }
    return Files.readAllBytes(file);
  }

  @Test
  void writerOutputReadsBackExactly() throws Exception {
    byte[] image = write(tree(), tmp.resolve("boot"));
    assertEquals(0, image.length % 4096);
    ErofsReader r = ErofsReader.open(ByteSource.of(image));
    assertTrue(r.header().superblock().rootNid() < 65536);
    Map<String, ErofsReader.Inode> byPath = new HashMap<>();
    r.walk((p, i) -> byPath.put(new String(p, StandardCharsets.UTF_8), i));
    assertEquals(500 + 1 + 1 + 1 + 4 + 1 + 1 + 1 + 1, byPath.size(), "every path, root included");
    ErofsReader.Inode huge = byPath.get("huge");
    assertTrue(huge.record().extended());
    assertEquals((5L << 30) + 7, huge.size());
    assertEquals(70000, huge.record().uid());
    List<ErofsReader.Chunk> chunks = new ArrayList<>();
    r.chunks(huge, chunks::add);
    assertEquals(5121, chunks.size());
    assertTrue(chunks.get(0).isHole());
    assertEquals(2, chunks.get(1).device());
    assertEquals(256, chunks.get(1).blkaddr());
    assertFalse(
        byPath.get("many/file-with-a-long-name-0000").record().extended(), "same mtime: compact");
    assertEquals(
        byPath.get("hardlink-a").nid(), byPath.get("many/file-with-a-long-name-0001").nid());
    assertEquals(2, byPath.get("hardlink-a").record().nlink());
    assertEquals(3, byPath.get("").record().nlink(), "root: . .. and one subdirectory");
    for (int len : new int[] {1, 3000, 4030, 4095}) {
      assertArrayEquals(
          b("t".repeat(len)), r.readLink(byPath.get("sym" + len)), "symlink of " + len);
    }
    assertEquals(InodeRecord.FLAT_INLINE, byPath.get("sym3000").record().layout());
    assertEquals(
        InodeRecord.FLAT_PLAIN, byPath.get("sym4095").record().layout(), "a tail that cannot fit");
    assertEquals(300, InodeRecord.devMinor(byPath.get("dev").record().iu()));
    Map<String, byte[]> x = r.xattrs(byPath.get("fifo"));
    assertArrayEquals(new byte[20], x.get("security.capability"));
    assertEquals(502, r.readDir(byPath.get("many")).size());
    assertTrue(byPath.get("many").size() > 4 * 4096, "a 500-entry directory spans several blocks");
    ImageSummary s = ImageSummary.of(r);
    assertEquals(500 + 1 + 1 + 4 + 1 + 1 + 1 + 1, s.inodes(), "hard links counted once");
    assertEquals(r.header().superblock().inodes(), s.inodes());
    assertTrue(
        s.dedupRatio() > 1.0, "the huge file references 7 distinct chunk locations many times");
  }

  @Test
  void writerRejectsWhatTheFormatCannotHold() {
    ErofsNode root = node(FileType.DIRECTORY, 0);
    assertThrows(
        IllegalArgumentException.class, () -> root.put(b("n".repeat(256)), node(FileType.FIFO, 0)));
    ErofsNode f = node(FileType.FIFO, 0);
    f.xattrs = Map.of("user.big", new byte[5000]);
    root.put(b("f"), f);
    assertThrows(ErofsFormatException.class, () -> write(root, tmp.resolve("x")));
    f.xattrs = Map.of("system.nfs4_acl", new byte[4]);
    assertThrows(ErofsFormatException.class, () -> write(root, tmp.resolve("y")));
  }

  @Test
  void corruptedImagesFailCleanlyAndQuickly() throws Exception {
    byte[] good = write(tree(), tmp.resolve("boot"));
    Random rnd = new Random(1234);
    int rejected = 0;
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    ExecutorService pool =
        Executors.newSingleThreadExecutor(
            r -> {
              Thread t = new Thread(r, "fuzz");
              t.setDaemon(true);
              return t;
            });
    for (int iter = 0; iter < 3000; iter++) {
      byte[] bad = good.clone();
      int flips = 1 + rnd.nextInt(8);
      for (int k = 0; k < flips; k++) {
        int at =
            rnd.nextInt(4) == 0
                ? rnd.nextInt(bad.length)
                : 1024 + rnd.nextInt(Math.min(bad.length, 40_000) - 1024);
        bad[at] = (byte) rnd.nextInt(256);
      }
      if (rnd.nextInt(10) == 0) {
        bad = Arrays.copyOf(bad, rnd.nextInt(bad.length));
      }
      byte[] img = bad;
      Future<?> f =
          pool.submit(
              () -> {
                readEverything(img);
                return null;
              });
      try {
        f.get(5, TimeUnit.SECONDS);
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof IOException)) {
          fail("iteration " + iter + ": corrupted image raised " + e.getCause(), e.getCause());
        }
        rejected++;
      } catch (TimeoutException e) {
        fail("iteration " + iter + ": reading a corrupted image did not finish in 5 s");
      }
      assertTrue(System.nanoTime() < deadline, "fuzzing took too long");
    }
    pool.shutdownNow();
    assertTrue(rejected > 100, "most corruptions are detected: " + rejected);
  }

  private static void readEverything(byte[] img) throws IOException {
    ErofsReader r = ErofsReader.open(ByteSource.of(img));
    r.walk(
        (p, i) -> {
          r.xattrs(i);
          switch (i.type()) {
            case SYMLINK -> r.readLink(i);
            case REGULAR -> {
              if (i.record().layout() == InodeRecord.CHUNK_BASED) {
                r.chunks(i, c -> {});
              }
            }
            default -> {}
          }
        });
  }
}

package dev.lazypull.fanotify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Mounts;
import dev.lazypull.sys.Posix;
import dev.lazypull.testing.Requirements;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fanotify front end's mechanism on the host kernel (root, Linux 6.14+ with file-backed EROFS):
 * an image made by mkfs.erofs with its data in a separate blob, mounted with mount(2) on the
 * bootstrap file and {@code device=} a sparse cache file marked FAN_PRE_ACCESS; a Java event loop
 * fills each event's range from the real blob through the event's fd. Under CI=true this runs;
 * elsewhere it skips only without root or mkfs.erofs.
 */
class FanotifyErofsMountTest {
  private static final long READ_TIMEOUT_SECONDS = 120;

  @TempDir Path tmp;
  private Path tree;
  private Path boot;
  private Path blob;

  @BeforeEach
  void buildImage() throws Exception {
    Requirements.requireRoot();
    Requirements.requireTool("mkfs.erofs");
    tree = Files.createDirectories(tmp.resolve("tree"));
    Random rnd = new Random(2026);
    int[] sizes = {
      0, 1, 100, 4095, 4096, 4097, 65537, 1 << 20, (1 << 20) + 1, 3_000_000, 2_500_000
    };
    for (int i = 0; i < sizes.length; i++) {
      write(tree.resolve("f" + i + ".bin"), sizes[i], rnd);
    }
    for (int i = 0; i < 40; i++) {
      write(
          Files.createDirectories(tree.resolve("d" + (i % 5) + "/sub")).resolve("s" + i),
          rnd.nextInt(300_000),
          rnd);
    }
    boot = tmp.resolve("boot.erofs");
    blob = tmp.resolve("blob");
    Requirements.run(
        "mkfs.erofs",
        "--quiet",
        "--chunksize=1048576",
        "--blobdev=" + blob,
        boot.toString(),
        tree.toString());
    assertTrue(Files.size(blob) > 8_000_000, "the data lives in the blob");
  }

  private static void write(Path p, int size, Random rnd) throws IOException {
    byte[] b = new byte[size];
    rnd.nextBytes(b);
    Files.write(p, b);
  }

  private Path sparseCopyOfBlob() throws IOException {
    Path sparse = tmp.resolve("cache");
    try (RandomAccessFile f = new RandomAccessFile(sparse.toFile(), "rw")) {
      f.setLength(Files.size(blob)); // all holes
    }
    return sparse;
  }

  private List<Path> files() throws IOException {
    try (Stream<Path> s = Files.walk(tree)) {
      return s.filter(Files::isRegularFile).map(tree::relativize).sorted().toList();
    }
  }

  @Test
  void everyFileReadsByteExactWhileAJavaEventLoopFillsTheCacheFile() throws Exception {
    Path sparse = sparseCopyOfBlob();
    Path mnt = Files.createDirectory(tmp.resolve("mnt"));
    List<Path> files = files();
    KernelFanotifyGroup group = KernelFanotifyGroup.open();
    RangeFiller filler = new RangeFiller(group, blob, true, FanotifyResponse.ALLOW);
    Thread loop = new Thread(filler, "fanotify-filler");
    ExecutorService readers = Executors.newFixedThreadPool(4);
    boolean mounted = false;
    try {
      group.mark(sparse);
      loop.start();
      Mounts.mountErofsFile(boot, mnt, List.of(sparse));
      mounted = true;
      List<Future<List<String>>> results = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        List<Path> order = new ArrayList<>(files);
        Collections.shuffle(order, new Random(t));
        results.add(readers.submit(() -> compare(order, mnt)));
      }
      List<String> mismatches = new ArrayList<>();
      for (Future<List<String>> r : results) {
        mismatches.addAll(
            r.get(READ_TIMEOUT_SECONDS, TimeUnit.SECONDS)); // a hung reader fails here
      }
      assertEquals(List.of(), mismatches);
      assertTrue(filler.events.get() > 0, "reads of the mount raised events");
      assertTrue(filler.bytesFilled.get() > 0);
      assertEquals(List.of(), filler.problems);
      System.out.printf(
          "fanotify mount: %d files x 4 readers byte-exact, %d events, %d bytes filled of %d%n",
          files.size(), filler.events.get(), filler.bytesFilled.get(), Files.size(blob));
    } finally {
      cleanUp(mnt, mounted, filler, loop, group, readers);
    }
  }

  @Test
  void aDeniedRangeIsAnIoErrorForTheReaderNeverZeros() throws Exception {
    Path sparse = sparseCopyOfBlob();
    Path mnt = Files.createDirectory(tmp.resolve("mnt"));
    KernelFanotifyGroup group = KernelFanotifyGroup.open();
    RangeFiller denier = new RangeFiller(group, blob, false, FanotifyResponse.denyErrno(Errno.EIO));
    Thread loop = new Thread(denier, "fanotify-denier");
    ExecutorService readers = Executors.newFixedThreadPool(2);
    boolean mounted = false;
    try {
      group.mark(sparse);
      loop.start();
      Mounts.mountErofsFile(boot, mnt, List.of(sparse));
      mounted = true;
      assertEquals(
          3_000_000, Files.size(mnt.resolve("f9.bin")), "metadata comes from the bootstrap");
      List<Future<String>> results = new ArrayList<>();
      for (Path f : files()) {
        results.add(
            readers.submit(
                () -> {
                  try {
                    byte[] got = Files.readAllBytes(mnt.resolve(f));
                    return Arrays.equals(got, Files.readAllBytes(tree.resolve(f)))
                        ? "exact"
                        : "WRONG BYTES in " + f;
                  } catch (IOException e) {
                    return e.getMessage() != null && e.getMessage().contains("Input/output error")
                        ? "EIO"
                        : "unexpected " + e;
                  }
                }));
      }
      List<String> outcomes = new ArrayList<>();
      for (Future<String> r : results) {
        outcomes.add(r.get(READ_TIMEOUT_SECONDS, TimeUnit.SECONDS));
      }
      assertTrue(
          outcomes.stream().allMatch(o -> o.equals("EIO") || o.equals("exact")),
          outcomes.toString());
      assertTrue(outcomes.contains("EIO"), outcomes.toString());
      assertEquals(
          "EIO", outcomes.get(files().indexOf(Path.of("f9.bin"))), "a 3 MB file lives in the blob");
      assertTrue(denier.events.get() > 0);
      assertEquals(0, denier.bytesFilled.get());
      assertEquals(0, Posix.allocatedBytes(sparse.toString()), "nothing was written to the cache");
    } finally {
      cleanUp(mnt, mounted, denier, loop, group, readers);
    }
  }

  private List<String> compare(List<Path> files, Path mnt) throws IOException {
    List<String> bad = new ArrayList<>();
    for (Path f : files) {
      byte[] want = Files.readAllBytes(tree.resolve(f));
      byte[] got = Files.readAllBytes(mnt.resolve(f));
      if (!Arrays.equals(want, got)) {
        bad.add(
            f + ": " + got.length + " bytes, first difference at " + Arrays.mismatch(want, got));
      }
    }
    return bad;
  }

  /**
   * Unmounts first (closing the group would allow pending reads with holes), then stops the loop.
   */
  private static void cleanUp(
      Path mnt,
      boolean mounted,
      RangeFiller filler,
      Thread loop,
      KernelFanotifyGroup group,
      ExecutorService readers)
      throws InterruptedException {
    String umountFailure = null;
    if (mounted) {
      try {
        Mounts.umount(mnt.toString(), 0);
      } catch (ErrnoException e) {
        umountFailure = e.getMessage();
        try {
          Mounts.umount(mnt.toString(), Mounts.MNT_DETACH);
        } catch (ErrnoException ignored) {
          // reported below
        }
      }
    }
    filler.stop();
    loop.join(10_000);
    group.close();
    readers.shutdownNow();
    if (umountFailure != null) {
      fail("umount: " + umountFailure);
    }
  }
}

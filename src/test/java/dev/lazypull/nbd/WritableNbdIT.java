package dev.lazypull.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.cli.Main;
import dev.lazypull.image.Json;
import dev.lazypull.overlay.Overlay;
import dev.lazypull.sys.Posix;
import dev.lazypull.testing.LazypullProcess;
import dev.lazypull.testing.NbdFuseMount;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.VmHarness;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code lazypull nbd IMAGE --blob … --writable} (the packaged CLI) with real clients: qemu-io and
 * nbdsh write, zero, discard, flush and read back; {@code nbdinfo --map} shows zero extents where
 * trimmed; {@code qemu-img convert} of the export equals the base plus the writes; after {@code
 * kill -9} flushed and FUA writes are there and unflushed ones never show as bytes that were not
 * written; one export per overlay; a damaged state file is refused with the file left as it was.
 *
 * <p>The base is the raw data blob of an image made with mkfs.erofs and {@code import} (zstd
 * chunks, verified).
 */
class WritableNbdIT {
  private static Path work;
  private static Path jar;
  private static String image;
  private static String blob;
  private static byte[] base;

  @BeforeAll
  static void image() throws Exception {
    for (String tool : new String[] {"mkfs.erofs", "qemu-io", "qemu-img", "nbdinfo", "nbdsh"}) {
      Requirements.requireTool(tool);
    }
    jar = VmHarness.jar();
    work = VmHarness.workDir("nbd-writable");
    Path tree = Files.createDirectories(work.resolve("tree"));
    Random rnd = new Random(3);
    for (int i = 0; i < 3; i++) {
      byte[] b = new byte[6_000_000 + i * 1000];
      rnd.nextBytes(b);
      Files.write(tree.resolve("f" + i), b);
    }
    Path boot = work.resolve("boot.erofs");
    Path blobFile = work.resolve("blob.img");
    Requirements.run(
        "mkfs.erofs",
        "--quiet",
        "-T0",
        "--chunksize=1048576",
        "--blobdev=" + blobFile,
        boot.toString(),
        tree.toString());
    image = "oci:" + work.resolve("layout") + ":disk";
    assertEquals(0, Main.run("import", boot.toString(), blobFile.toString(), "--output", image));
    base = Files.readAllBytes(blobFile);
    JsonNode index = Json.MAPPER.readTree(work.resolve("layout/index.json").toFile());
    String manifest = index.path("manifests").get(0).path("digest").asText().substring(7);
    JsonNode m = Json.MAPPER.readTree(work.resolve("layout/blobs/sha256/" + manifest).toFile());
    blob = m.path("layers").get(1).path("digest").asText();
  }

  private static LazypullProcess serve(String name, Path overlay, String... extra)
      throws Exception {
    Path socket = work.resolve(name + ".sock");
    String[] args =
        new String[] {
          "nbd",
          image,
          "--blob",
          blob,
          "--writable",
          "--overlay",
          overlay.toString(),
          "--listen",
          "unix:" + socket,
          "--cache-dir",
          work.resolve("cache").toString()
        };
    String[] all = Arrays.copyOf(args, args.length + extra.length);
    System.arraycopy(extra, 0, all, args.length, extra.length);
    LazypullProcess p = LazypullProcess.start(jar, work.resolve("lazypull-" + name), all);
    p.awaitLine("serving", 60);
    return p;
  }

  private static String uri(String name) {
    return "nbd+unix:///?socket=" + work.resolve(name + ".sock");
  }

  private static String qemuIo(String name, String... commands) throws Exception {
    String[] cmd = new String[3 + 2 * commands.length];
    cmd[0] = "qemu-io";
    cmd[1] = "-f";
    cmd[2] = "raw";
    for (int i = 0; i < commands.length; i++) {
      cmd[3 + 2 * i] = "-c";
      cmd[4 + 2 * i] = commands[i];
    }
    String[] all = Arrays.copyOf(cmd, cmd.length + 1);
    all[cmd.length] = uri(name);
    String out = Requirements.run(all);
    assertTrue(!out.contains("Pattern verification failed") && !out.contains("failed"), out);
    return out;
  }

  /**
   * nbdsh (python3-libnbd) with a script. The module lives in the system's python3: nbdsh's own
   * {@code env python3} could find another one first on PATH (pyenv), so the system interpreter
   * runs it when there is one.
   */
  static String nbdsh(String uri, String script) throws Exception {
    return Files.isExecutable(Path.of("/usr/bin/python3"))
        ? Requirements.run(
            "/usr/bin/python3", "-m", "nbd", "--base-allocation", "-u", uri, "-c", script)
        : Requirements.run("nbdsh", "--base-allocation", "-u", uri, "-c", script);
  }

  @Test
  void qemuIoWritesZeroesAndDiscardsAndConvertEqualsTheBasePlusTheWrites() throws Exception {
    byte[] expected = base.clone();
    try (LazypullProcess p = serve("qemu", work.resolve("ov-qemu"))) {
      qemuIo(
          "qemu",
          "write -P 0xab 4096 8192",
          "write -z 65536 65536",
          "discard 1048576 262144",
          "write -P 0xcd 1000 100",
          "write -P 0x5a 2097150 5",
          "flush",
          "read -P 0xab 4096 8192",
          "read -P 0 65536 65536",
          "read -P 0 1048576 262144",
          "read -P 0xcd 1000 100",
          "read -P 0x5a 2097150 5");
      Arrays.fill(expected, 4096, 4096 + 8192, (byte) 0xab);
      Arrays.fill(expected, 65536, 131072, (byte) 0);
      Arrays.fill(expected, 1048576, 1048576 + 262144, (byte) 0);
      Arrays.fill(expected, 1000, 1100, (byte) 0xcd);
      Arrays.fill(expected, 2097150, 2097155, (byte) 0x5a);

      String map = Requirements.run("nbdinfo", "--map", uri("qemu"));
      assertTrue(map.contains("     65536       65536    3  hole,zero"), map);
      assertTrue(map.contains("   1048576      262144    3  hole,zero"), map);

      Path copy = work.resolve("qemu-convert.img");
      Requirements.run(
          "qemu-img", "convert", "-f", "raw", "-O", "raw", uri("qemu"), copy.toString());
      assertArrayEquals(expected, Files.readAllBytes(copy), "qemu-img convert == base + writes");
      Map<String, Long> stats = p.stop();
      assertEquals(0, stats.get("writesFailed"));
      assertTrue(stats.get("bytesFetched") < base.length, "the base was fetched lazily: " + stats);
    }
    long allocated = Posix.allocatedBytes(work.resolve("ov-qemu").resolve(Overlay.DATA).toString());
    assertTrue(allocated <= 6 * 4096, "only the written blocks take space: " + allocated);
  }

  @Test
  void nbdshDrivesEveryWriteCommandWithItsFlags() throws Exception {
    try (LazypullProcess p = serve("nbdsh", work.resolve("ov-nbdsh"))) {
      String out =
          nbdsh(
              uri("nbdsh"),
              String.join(
                  "\n",
                  "assert h.can_fua() and h.can_trim() and h.can_zero() and h.can_flush() and h.can_multi_conn()",
                  "assert not h.is_read_only() and not h.can_fast_zero()",
                  "size = h.get_size()",
                  "h.pwrite(b'\\x11' * 10000, 5000, nbd.CMD_FLAG_FUA)",
                  "h.zero(8192, 65536, nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FUA)",
                  "h.trim(4096 * 3, 4096 * 40)",
                  "h.pwrite(bytes(4096 * 2), 4096 * 50)", // an all-zero write: becomes zero blocks
                  "h.flush()",
                  "assert h.pread(10000, 5000) == b'\\x11' * 10000",
                  "assert h.pread(8192, 65536) == bytes(8192)",
                  "assert h.pread(4096 * 3, 4096 * 40) == bytes(4096 * 3)",
                  "try:",
                  "  h.pwrite(b'x' * 10, size - 5)",
                  "  raise AssertionError('a write past the end was taken')",
                  "except nbd.Error as e:",
                  "  assert e.errno == 'ENOSPC', e",
                  "try:",
                  "  h.zero(4096, 0, nbd.CMD_FLAG_FAST_ZERO)",
                  "  raise AssertionError('FAST_ZERO was taken')",
                  "except nbd.Error as e:",
                  "  pass",
                  "seen = []",
                  "h.block_status(4096 * 64, 0, lambda ctx, off, ents, err: seen.append(list(ents)) or 0)",
                  "print('extents', seen)"));
      // data, the zeroed blocks 16-17, data, the trimmed 40-42, data, the zero write 50-51, data
      assertTrue(
          out.contains(
              "extents [[65536, 0, 8192, 3, 90112, 0, 12288, 3, 28672, 0, 8192, 3, 49152, 0]]"),
          out);
      Map<String, Long> stats = p.stop();
      assertEquals(0, stats.get("writesFailed"), stats.toString());
    }
  }

  @Test
  void afterKillNineFlushedAndFuaWritesAreThereAndNothingReadsAsBytesNeverWritten()
      throws Exception {
    Path ov = work.resolve("ov-crash");
    try (LazypullProcess p = serve("crash", ov)) {
      nbdsh(
          uri("crash"),
          String.join(
              "\n",
              "h.pwrite(b'\\x21' * (8 * 4096), 0)", // flushed below
              "h.trim(4 * 4096, 16 * 4096)", // flushed below
              "h.flush()",
              "h.pwrite(b'\\x22' * (4 * 4096), 100 * 4096, nbd.CMD_FLAG_FUA)", // durable at once
              "h.pwrite(b'\\x23' * (4 * 4096), 200 * 4096)", // never flushed: over untouched blocks
              "h.pwrite(b'\\x24' * (2 * 4096), 2 * 4096)", // never flushed: over flushed dirty
              // blocks
              "h.pwrite(b'\\x25' * 4096, 17 * 4096)")); // never flushed: over a flushed zero block
      p.kill9();
    }
    byte[] got;
    try (LazypullProcess p = serve("crash", ov)) {
      Path copy = work.resolve("crash-copy.img");
      Requirements.run("nbdcopy", uri("crash"), copy.toString());
      got = Files.readAllBytes(copy);
      p.stop();
    }
    assertBlocks(got, 0, 2, (byte) 0x21);
    assertBlocks(got, 4, 4, (byte) 0x21);
    assertBlocks(got, 16, 1, (byte) 0);
    assertBlocks(got, 18, 2, (byte) 0);
    assertBlocks(got, 100, 4, (byte) 0x22);
    for (int b = 0;
        b < got.length / 4096;
        b++) { // every block: as flushed, or as written since, nothing else
      byte[] blk = Arrays.copyOfRange(got, b * 4096, (b + 1) * 4096);
      boolean ok =
          switch (b) {
            case 2, 3 -> isFilled(blk, (byte) 0x21) || isFilled(blk, (byte) 0x24);
            case 17 -> isFilled(blk, (byte) 0) || isFilled(blk, (byte) 0x25);
            case 200, 201, 202, 203 ->
                Arrays.equals(blk, Arrays.copyOfRange(base, b * 4096, (b + 1) * 4096))
                    || isFilled(blk, (byte) 0x23);
            default -> true;
          };
      assertTrue(ok, "block " + b + " reads as bytes that were never written there");
    }
    assertArrayEquals(
        Arrays.copyOfRange(base, 20 * 4096, 100 * 4096),
        Arrays.copyOfRange(got, 20 * 4096, 100 * 4096),
        "untouched blocks read the base");
  }

  private static boolean isFilled(byte[] b, byte v) {
    for (byte x : b) {
      if (x != v) {
        return false;
      }
    }
    return true;
  }

  private static void assertBlocks(byte[] dev, int block, int n, byte v) {
    for (int b = block; b < block + n; b++) {
      assertTrue(
          isFilled(Arrays.copyOfRange(dev, b * 4096, (b + 1) * 4096), v),
          "block " + b + " should be all 0x" + Integer.toHexString(v & 0xff));
    }
  }

  @Test
  void oneExportPerOverlayAndTheSecondIsToldWhy() throws Exception {
    Path ov = work.resolve("ov-lock");
    try (LazypullProcess first = serve("lock1", ov)) {
      LazypullProcess second =
          LazypullProcess.start(
              jar,
              work.resolve("lazypull-lock2"),
              "nbd",
              image,
              "--blob",
              blob,
              "--writable",
              "--overlay",
              ov.toString(),
              "--listen",
              "unix:" + work.resolve("lock2.sock"),
              "--cache-dir",
              work.resolve("cache").toString());
      try {
        assertNotEquals(0, second.awaitExit(60));
        assertTrue(
            second.output().contains("is in use by another export (pid " + first.pid() + ")"),
            second.output());
      } finally {
        second.close();
      }
      first.stop();
    }
  }

  @Test
  void aDamagedStateFileIsRefusedAndLeftAsItWas() throws Exception {
    Path ov = work.resolve("ov-damaged");
    try (LazypullProcess p = serve("damaged", ov)) {
      qemuIo("damaged", "write -P 0x77 0 65536", "flush");
      p.stop();
    }
    Path state = ov.resolve(Overlay.STATE);
    byte[] bytes = Files.readAllBytes(state);
    bytes[bytes.length - 1] ^= 1;
    Files.write(state, bytes);
    LazypullProcess p =
        LazypullProcess.start(
            jar,
            work.resolve("lazypull-damaged2"),
            "nbd",
            image,
            "--blob",
            blob,
            "--writable",
            "--overlay",
            ov.toString(),
            "--listen",
            "unix:" + work.resolve("damaged2.sock"),
            "--cache-dir",
            work.resolve("cache").toString());
    try {
      assertNotEquals(0, p.awaitExit(60));
      assertTrue(
          p.output().contains("checksum mismatch") && p.output().contains("nothing was changed"),
          p.output());
    } finally {
      p.close();
    }
    assertArrayEquals(bytes, Files.readAllBytes(state), "the state file is as it was");
  }

  @Test
  void anOverlayOfAnotherBaseIsRefused() throws Exception {
    Path ov = work.resolve("ov-other");
    try (LazypullProcess p = serve("other", ov)) {
      p.stop();
    }
    LazypullProcess p =
        LazypullProcess.start(
            jar,
            work.resolve("lazypull-other2"),
            "nbd",
            image,
            "--writable",
            "--overlay",
            ov.toString(),
            "--listen",
            "unix:" + work.resolve("other2.sock"),
            "--cache-dir",
            work.resolve("cache")
                .toString()); // the flattened device of the same image: another base
    try {
      assertNotEquals(0, p.awaitExit(60));
      assertTrue(p.output().contains("lies over blob " + blob), p.output());
    } finally {
      p.close();
    }
  }

  /** Bytes {@code nbdinfo --map} reports as {@code hole,zero}. */
  static long zeroBytes(String map) {
    long n = 0;
    for (String line : map.split("\n")) {
      String[] f = line.trim().split("\\s+");
      if (f.length >= 4 && f[3].equals("hole,zero")) {
        n += Long.parseLong(f[1]);
      }
    }
    return n;
  }

  @Test
  void ext4WithDiscardOverNbdfuseKeepsItsFilesAndGivesDeletedBlocksBack() throws Exception {
    NbdFuseMount.require();
    Requirements.requireTool("mkfs.ext4");
    Requirements.requireTool("fstrim");
    Path ov = work.resolve("ov-ext4");
    Path sums = work.resolve("ext4.md5");
    long zero;
    try (LazypullProcess p = serve("ext4", ov)) {
      String out =
          NbdFuseMount.runWritable(
              work,
              work.resolve("ext4.sock"),
              "ext4",
              String.join(
                  "\n",
                  "mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1,discard \"$DISK\"",
                  "mount -o loop,discard \"$DISK\" \"$MNT\"",
                  "head -c 4000000 /dev/urandom > \"$MNT/keep1\"",
                  "mkdir \"$MNT/d\" && head -c 300000 /dev/urandom > \"$MNT/d/keep2\"",
                  "head -c 8000000 /dev/urandom > \"$MNT/gone\"",
                  "sync",
                  "(cd \"$MNT\" && md5sum keep1 d/keep2 > '" + sums + "')",
                  "rm \"$MNT/gone\"",
                  "sync",
                  "fstrim -v \"$MNT\"",
                  "umount \"$MNT\"",
                  "mount -o loop \"$DISK\" \"$MNT\"",
                  "(cd \"$MNT\" && md5sum -c '" + sums + "')",
                  "umount \"$MNT\""));
      assertTrue(out.contains("keep1: OK") && out.contains("d/keep2: OK"), out);
      zero = zeroBytes(Requirements.run("nbdinfo", "--map", uri("ext4")));
      Map<String, Long> stats = p.stop();
      assertTrue(stats.get("zeroes") > 0, "discards reached the export as TRIMs: " + stats);
      assertEquals(0, stats.get("writesFailed"));
    }
    long allocated = Posix.allocatedBytes(ov.resolve(Overlay.DATA).toString());
    assertTrue(zero >= 8_000_000, "the deleted file's blocks read as zeros: " + zero);
    assertTrue(
        allocated < 8_000_000,
        "the deleted file's blocks were punched out of the overlay: " + allocated);
    try (LazypullProcess p = serve("ext4", ov)) { // the overlay as it was left, served again
      String out =
          NbdFuseMount.runWritable(
              work,
              work.resolve("ext4.sock"),
              "ext4-again",
              String.join(
                  "\n",
                  "mount -o loop,ro \"$DISK\" \"$MNT\"",
                  "(cd \"$MNT\" && md5sum -c '" + sums + "')",
                  "umount \"$MNT\""));
      assertTrue(out.contains("keep1: OK") && out.contains("d/keep2: OK"), out);
      p.stop();
    }
  }
}

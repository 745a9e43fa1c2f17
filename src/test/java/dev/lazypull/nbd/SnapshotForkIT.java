package dev.lazypull.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.cli.Main;
import dev.lazypull.image.BlockMap;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.DiskImage;
import dev.lazypull.image.Json;
import dev.lazypull.image.Manifest;
import dev.lazypull.oci.OciLayout;
import dev.lazypull.testing.CliRun;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.LazypullProcess;
import dev.lazypull.testing.NbdFuseMount;
import dev.lazypull.testing.RegistryImages;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.VmHarness;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Snapshots and forks with the packaged CLI, real clients and the host kernel (nbdfuse + loop):
 *
 * <ul>
 *   <li>ext4 on a writable export: mount with discard, write files, delete some, fstrim, unmount;
 *       snapshot the stopped overlay; the diff holds no zero block and none of the deleted file;
 *       restore it into a second writable export, mount: every file's md5 right, the deleted one
 *       gone;
 *   <li>chains (a snapshot of a restored snapshot) and {@code --squash} give the same device;
 *   <li>a snapshot pushed to a registry (the base imported there too) is served from the registry
 *       alone;
 *   <li>a live snapshot through the control socket at a flush point;
 *   <li>forks: separate processes on one cache fetch each base byte once; in one server through the
 *       control socket ({@code lazypull fork}), each fork its own device (the latency is measured
 *       by WritableNbdBench);
 *   <li>a damaged diff map or diff chunk: a clear error, never wrong bytes.
 * </ul>
 */
class SnapshotForkIT {
  static Path work;
  static Path jar;
  static Path disk;
  static Path sums;
  static String base;
  static DockerRegistryFixture reg;
  static final String JAVA = Path.of(System.getProperty("java.home"), "bin", "java").toString();

  @BeforeAll
  static void setUp() throws Exception {
    NbdFuseMount.require();
    for (String tool : new String[] {"mkfs.ext4", "fstrim", "nbdcopy", "nbdinfo", "qemu-io"}) {
      Requirements.requireTool(tool);
    }
    jar = VmHarness.jar();
    work = VmHarness.workDir("nbd-snapshot");
    disk = work.resolve("disk.img");
    sums = work.resolve("disk.md5");
    DiskNbdIT.makeExt4(work, disk, 64, sums);
    base = "oci:" + work.resolve("base") + ":v1";
    assertEquals(0, Main.run("import", "--disk", disk.toString(), "--output", base));
  }

  @AfterAll
  static void tearDown() {
    if (reg != null) {
      reg.close();
    }
  }

  static LazypullProcess serve(String ref, String name, String... extra) throws Exception {
    List<String> args = new ArrayList<>(List.of("nbd", ref, "--listen", "unix:" + sock(name)));
    args.addAll(Arrays.asList(extra));
    if (!args.contains("--cache-dir")) {
      args.addAll(List.of("--cache-dir", work.resolve("cache").toString()));
    }
    LazypullProcess p =
        LazypullProcess.start(jar, work.resolve("lazypull-" + name), args.toArray(new String[0]));
    p.awaitLine("serving", 60);
    return p;
  }

  static Path sock(String name) {
    return work.resolve(name + ".sock");
  }

  static String uri(String name) {
    return "nbd+unix:///?socket=" + sock(name);
  }

  static byte[] copyOf(String name) throws Exception {
    Path out = work.resolve(name + "-copy-" + System.nanoTime() + ".img");
    Requirements.run("nbdcopy", uri(name), out.toString());
    byte[] b = Files.readAllBytes(out);
    Files.delete(out);
    return b;
  }

  /** The snapshot in {@code layout:tag} as written. */
  static DiskImage image(Path layout, String tag) throws Exception {
    OciLayout oci = new OciLayout(layout, tag);
    Descriptor d = oci.findManifest();
    return DiskImage.of(
        "oci:" + layout + ":" + tag,
        d.digest(),
        Json.parse(oci.readVerified(d), Manifest.class, "manifest"));
  }

  /**
   * Every packed block of a diff, decompressed and verified against its table, checked: not one is
   * all zeros. Returns the number of blocks.
   */
  static long assertNoZeroBlocks(Path layout, DiskImage.Diff diff) throws Exception {
    if (diff.data() == null) {
      return 0;
    }
    Path blobs = layout.resolve("blobs/sha256");
    ChunkDigestTable t =
        ChunkDigestTable.decode(
            Files.readAllBytes(blobs.resolve(diff.table().digest().hex())), diff.data());
    byte[] stored = Files.readAllBytes(blobs.resolve(diff.data().digest().hex()));
    ByteBuffer all = ByteBuffer.allocateDirect((int) t.blobSize());
    for (int i = 0; i < t.size(); i++) {
      ByteBuffer frame = ByteBuffer.allocateDirect(t.compressedLength(i));
      frame.put(stored, (int) t.compressedOffset(i), t.compressedLength(i)).flip();
      t.unpack(i, frame, all.slice((int) t.offset(i), t.length(i)));
    }
    for (long b = 0; b < diff.blocks(); b++) {
      boolean zero = true;
      for (int i = 0; i < diff.blockSize() && zero; i++) {
        zero = all.get((int) (b * diff.blockSize() + i)) == 0;
      }
      assertTrue(!zero, "packed block " + b + " of the diff is all zero");
    }
    return diff.blocks();
  }

  @Test
  void ext4SnapshotAfterDeleteAndTrimRestoresEveryFileAndCarriesNoZeroBlocks() throws Exception {
    Path ovA = work.resolve("ov-a");
    Path sumsA = work.resolve("a.md5");
    byte[] before;
    try (LazypullProcess p = serve(base, "a", "--writable", "--overlay", ovA.toString())) {
      String out =
          NbdFuseMount.runWritable(
              work,
              sock("a"),
              "a",
              String.join(
                  "\n",
                  "mount -o loop,discard \"$DISK\" \"$MNT\"",
                  "(cd \"$MNT\" && md5sum -c '" + sums + "')",
                  "head -c 2000000 /dev/urandom > \"$MNT/new1\"",
                  "mkdir \"$MNT/e\" && head -c 100000 /dev/urandom > \"$MNT/e/new2\"",
                  "head -c 12000000 /dev/urandom > \"$MNT/gone\"",
                  "rm \"$MNT/a\"",
                  "sync",
                  "rm \"$MNT/gone\"",
                  "sync",
                  "fstrim \"$MNT\"",
                  "(cd \"$MNT\" && md5sum d/b hello.txt new1 e/new2 > '" + sumsA + "')",
                  "umount \"$MNT\""));
      assertTrue(out.contains("a: OK"), out);
      before = copyOf("a");
      p.stop();
    }
    Path snap = work.resolve("snap");
    assertEquals(
        0, Main.run("snapshot", "--overlay", ovA.toString(), "--output", "oci:" + snap + ":s1"));
    DiskImage s1 = image(snap, "s1");
    assertEquals(1, s1.diffs().size());
    long blocks = assertNoZeroBlocks(snap, s1.diffs().get(0));
    assertTrue(
        blocks * 4096 < 2_000_000 + 100_000 + 4_000_000,
        "the deleted file is not in the diff: " + blocks + " blocks");
    assertTrue(
        s1.diffs().get(0).data().size() < 4_000_000 + 2_200_000,
        "stored: " + s1.diffs().get(0).data());

    try (LazypullProcess p =
        serve("oci:" + snap + ":s1", "s1")) { // the snapshot read-only: the same device
      assertArrayEquals(before, copyOf("s1"));
      p.stop();
    }
    Path ovB = work.resolve("ov-b");
    try (LazypullProcess p =
        serve("oci:" + snap + ":s1", "b", "--writable", "--overlay", ovB.toString())) {
      String out =
          NbdFuseMount.runWritable(
              work,
              sock("b"),
              "b",
              String.join(
                  "\n",
                  "mount -o loop \"$DISK\" \"$MNT\"",
                  "(cd \"$MNT\" && md5sum -c '" + sumsA + "')",
                  "test ! -e \"$MNT/gone\" && test ! -e \"$MNT/a\" && echo deleted-stay-deleted",
                  "echo more > \"$MNT/more.txt\"",
                  "umount \"$MNT\""));
      assertTrue(
          out.contains("new1: OK")
              && out.contains("e/new2: OK")
              && out.contains("d/b: OK")
              && out.contains("deleted-stay-deleted"),
          out);
      p.stop();
    }
    // a snapshot of the restored snapshot: a chain of two diffs; squashed: one diff, the same
    // device
    assertEquals(
        0, Main.run("snapshot", "--overlay", ovB.toString(), "--output", "oci:" + snap + ":s2"));
    assertEquals(
        0,
        Main.run(
            "snapshot",
            "--overlay",
            ovB.toString(),
            "--output",
            "oci:" + snap + ":s3",
            "--squash",
            "--cache-dir",
            work.resolve("cache").toString()));
    DiskImage s2 = image(snap, "s2");
    DiskImage s3 = image(snap, "s3");
    assertEquals(2, s2.diffs().size());
    assertEquals(1, s3.diffs().size());
    assertEquals(s1.manifestDigest().toString(), s2.parent());
    assertNoZeroBlocks(snap, s3.diffs().get(0));
    byte[] chained;
    try (LazypullProcess p = serve("oci:" + snap + ":s2", "s2")) {
      chained = copyOf("s2");
      String out =
          NbdFuseMount.runWritable(
              work,
              sock("s2"),
              "s2",
              String.join(
                  "\n",
                  "mount -o loop,ro \"$DISK\" \"$MNT\"",
                  "cat \"$MNT/more.txt\"",
                  "(cd \"$MNT\" && md5sum -c '" + sumsA + "')",
                  "umount \"$MNT\""));
      assertTrue(out.contains("more") && out.contains("new1: OK"), out);
      p.stop();
    }
    try (LazypullProcess p = serve("oci:" + snap + ":s3", "s3")) {
      assertArrayEquals(chained, copyOf("s3"), "squashed == chained");
      p.stop();
    }
  }

  @Test
  void aSnapshotPushedToARegistryIsServedFromThereAlone() throws Exception {
    reg = DockerRegistryFixture.builder(work.resolve("registry")).start();
    Path toml = RegistryImages.config(work, null);
    String[] regFlags = {"--plain-http", "--config", toml.toString()};
    String baseRef = reg.host() + "/disks/base:v1";
    assertEquals(
        0,
        Main.run(
            concat(
                new String[] {"import", "--disk", disk.toString(), "--push", baseRef}, regFlags)));
    Path ov = work.resolve("ov-reg");
    byte[] expected;
    try (LazypullProcess p =
        serve(
            baseRef,
            "reg",
            concat(
                new String[] {
                  "--writable",
                  "--overlay",
                  ov.toString(),
                  "--cache-dir",
                  work.resolve("cache-reg").toString()
                },
                regFlags))) {
      Requirements.run(
          "qemu-io",
          "-f",
          "raw",
          "-c",
          "write -P 0x61 1048576 3145728",
          "-c",
          "write -z 0 65536",
          uri("reg"));
      expected = copyOf("reg");
      p.stop();
    }
    String snapRef =
        reg.host() + "/disks/snap:s1"; // another repository: the base's layers are mounted
    assertEquals(
        0,
        Main.run(
            concat(
                new String[] {"snapshot", "--overlay", ov.toString(), "--push", snapRef},
                regFlags)));
    try (LazypullProcess p =
        serve(
            snapRef,
            "reg-snap",
            concat(
                new String[] {"--cache-dir", work.resolve("cache-reg-snap").toString()},
                regFlags))) {
      assertArrayEquals(
          expected, copyOf("reg-snap"), "served from the registry alone, from a cold cache");
      Map<String, Long> stats = p.stop();
      assertEquals(0, stats.get("integrityFailures"));
    }

    // inspect shows the snapshot from its manifest; a standalone prefetch fills a cache from which
    // an export then fetches nothing
    CliRun.Result shown = CliRun.run(concat(new String[] {"inspect", snapRef}, regFlags));
    assertEquals(0, shown.code(), shown.err());
    assertTrue(
        shown.out().contains("kind:         snapshot image")
            && shown.out().contains("diff 1: ")
            && shown.out().contains("taken over "),
        shown.out());
    Path preCache = work.resolve("cache-pre-snap");
    CliRun.Result pre =
        CliRun.run(
            concat(
                new String[] {
                  "prefetch", snapRef, "--standalone", "--all", "--cache-dir", preCache.toString()
                },
                regFlags));
    assertEquals(0, pre.code(), pre.out() + pre.err());
    CliRun.Result noPaths =
        CliRun.run(
            concat(
                new String[] {
                  "prefetch",
                  snapRef,
                  "--standalone",
                  "--path",
                  "/etc/*",
                  "--cache-dir",
                  preCache.toString()
                },
                regFlags));
    assertEquals(1, noPaths.code());
    assertTrue(noPaths.err().contains("is a disk image (a block device, no files)"), noPaths.err());
    try (LazypullProcess p =
        serve(
            snapRef,
            "pre-snap",
            concat(new String[] {"--cache-dir", preCache.toString()}, regFlags))) {
      assertArrayEquals(expected, copyOf("pre-snap"), "served from the prefetched cache");
      Map<String, Long> stats = p.stop();
      assertEquals(0, stats.get("bytesFetched"), "everything was prefetched: " + stats);
    }
  }

  static String[] concat(String[] a, String[] b) {
    String[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  @Test
  void liveSnapshotsAndForksThroughTheControlSocket() throws Exception {
    Path control = work.resolve("ctl/c.sock");
    Path ov = work.resolve("ov-live");
    try (LazypullProcess p =
        serve(
            base,
            "live",
            "--writable",
            "--overlay",
            ov.toString(),
            "--control",
            control.toString())) {
      Requirements.run("qemu-io", "-f", "raw", "-c", "write -P 0x71 8388608 1048576", uri("live"));
      byte[] expected = copyOf("live");
      Path snap = work.resolve("snap-live");
      String manifest =
          Requirements.run(
                  JAVA,
                  "-jar",
                  jar.toString(),
                  "snapshot",
                  "--control",
                  control.toString(),
                  "--output",
                  "oci:" + snap + ":live")
              .strip();
      assertTrue(manifest.endsWith(image(snap, "live").manifestDigest().toString()), manifest);
      Requirements.run(
          "qemu-io", "-f", "raw", "-c", "write -P 0x72 8388608 4096", uri("live")); // after it

      // forks: each its own overlay over the same base, connectable as soon as the request is
      // answered
      for (int i = 0; i < 4; i++) {
        String out =
            Requirements.run(
                JAVA,
                "-jar",
                jar.toString(),
                "fork",
                "--control",
                control.toString(),
                "--name",
                "f" + i,
                "--overlay",
                work.resolve("forks/f" + i).toString());
        assertTrue(
            out.contains("nbd+unix:///?socket=" + control.getParent().resolve("f" + i + ".sock")),
            out);
      }
      Requirements.run(
          "qemu-io",
          "-f",
          "raw",
          "-c",
          "write -P 0x0a 0 4096",
          "nbd+unix:///?socket=" + control.getParent().resolve("f1.sock"));
      Requirements.run(
          "qemu-io",
          "-f",
          "raw",
          "-c",
          "write -P 0x0b 0 4096",
          "nbd+unix:///?socket=" + control.getParent().resolve("f2.sock"));
      Requirements.run(
          "qemu-io",
          "-r",
          "-f",
          "raw",
          "-c",
          "read -P 0x0a 0 4096",
          "nbd+unix:///?socket=" + control.getParent().resolve("f1.sock"));
      Requirements.run(
          "qemu-io",
          "-r",
          "-f",
          "raw",
          "-c",
          "read -P 0x0b 0 4096",
          "nbd+unix:///?socket=" + control.getParent().resolve("f2.sock"));
      byte[] f3 = Files.readAllBytes(disk); // an untouched fork reads the base
      Path f3copy = work.resolve("f3.img");
      Requirements.run(
          "nbdcopy",
          "nbd+unix:///?socket=" + control.getParent().resolve("f3.sock"),
          f3copy.toString());
      assertArrayEquals(f3, Files.readAllBytes(f3copy));
      Requirements.run(
          JAVA, "-jar", jar.toString(), "fork", "--control", control.toString(), "--remove", "f2");
      assertTrue(
          !Files.exists(control.getParent().resolve("f2.sock")),
          "an unforked export stops listening");
      Map<String, Long> stats = p.stop();
      assertEquals(0, stats.get("writesFailed"));
      try (LazypullProcess s = serve("oci:" + snap + ":live", "live-snap")) {
        assertArrayEquals(
            expected, copyOf("live-snap"), "the snapshot is the device at its flush point");
        s.stop();
      }
    }
  }

  @Test
  void forksInSeparateProcessesOnOneCacheFetchEachBaseByteOnce() throws Exception {
    Path cache = work.resolve("cache-procs");
    try (LazypullProcess a =
            serve(
                base,
                "pa",
                "--writable",
                "--overlay",
                work.resolve("ov-pa").toString(),
                "--cache-dir",
                cache.toString());
        LazypullProcess b =
            serve(
                base,
                "pb",
                "--writable",
                "--overlay",
                work.resolve("ov-pb").toString(),
                "--cache-dir",
                cache.toString())) {
      Requirements.run("qemu-io", "-f", "raw", "-c", "write -P 0x31 0 65536", uri("pa"));
      Requirements.run("qemu-io", "-f", "raw", "-c", "write -P 0x32 0 65536", uri("pb"));
      byte[] ca = copyOf("pa");
      byte[] cb = copyOf("pb");
      byte[] want = Files.readAllBytes(disk);
      Arrays.fill(want, 0, 65536, (byte) 0x31);
      assertArrayEquals(want, ca);
      Arrays.fill(want, 0, 65536, (byte) 0x32);
      assertArrayEquals(want, cb);
      long fa = a.stop().get("bytesFetched");
      long fb = b.stop().get("bytesFetched");
      long stored =
          Files.size(
              work.resolve("base/blobs/sha256")
                  .resolve(image(work.resolve("base"), "v1").disk().digest().hex()));
      assertTrue(
          fa + fb <= stored + (1 << 20),
          "each base byte fetched once between the two: " + fa + " + " + fb + " of " + stored);
    }
  }

  @Test
  void aDamagedDiffMapOrChunkIsAClearErrorNeverWrongBytes() throws Exception {
    Path ov = work.resolve("ov-bad");
    try (LazypullProcess p = serve(base, "bad", "--writable", "--overlay", ov.toString())) {
      Requirements.run("qemu-io", "-f", "raw", "-c", "write -P 0x55 0 2097152", uri("bad"));
      p.stop();
    }
    Path snap = work.resolve("snap-bad");
    assertEquals(
        0, Main.run("snapshot", "--overlay", ov.toString(), "--output", "oci:" + snap + ":s"));
    DiskImage img = image(snap, "s");
    DiskImage.Diff diff = img.diffs().get(0);
    Path blobs = snap.resolve("blobs/sha256");
    // the map, damaged: refused at start, naming it
    Path map = blobs.resolve(diff.map().digest().hex());
    byte[] good = Files.readAllBytes(map);
    byte[] bad = good.clone();
    bad[bad.length - 1] ^= 1;
    Files.write(map, bad);
    LazypullProcess p =
        LazypullProcess.start(
            jar,
            work.resolve("lazypull-badmap"),
            "nbd",
            "oci:" + snap + ":s",
            "--listen",
            "unix:" + sock("badmap"),
            "--cache-dir",
            work.resolve("cache-bad").toString());
    try {
      assertNotEquals(0, p.awaitExit(60));
      assertTrue(p.output().contains(diff.map().digest().toString()), p.output());
    } finally {
      p.close();
    }
    Files.write(map, good);
    // a chunk of the diff's data, damaged: that range is an I/O error, the rest reads
    Path data = blobs.resolve(diff.data().digest().hex());
    byte[] stored = Files.readAllBytes(data);
    stored[stored.length / 2] ^= 0x10;
    Files.write(data, stored);
    try (LazypullProcess s =
        serve(
            "oci:" + snap + ":s",
            "badchunk",
            "--cache-dir",
            work.resolve("cache-bad2").toString())) {
      String out =
          Requirements.run(
              "bash",
              "-c",
              "qemu-io -r -f raw -c 'read -P 0x55 0 2097152' -c "
                  + "'read 16777216 4096' '"
                  + uri("badchunk")
                  + "' 2>&1; true");
      assertTrue(
          out.contains("Input/output error") && !out.contains("Pattern verification failed"), out);
      assertTrue(out.contains("read 4096/4096 bytes at offset 16777216"), out);
      s.stop();
    }
  }

  @Test
  void aSnapshotOfAnOverlayInUseIsRefusedWithTheWayOut() throws Exception {
    Path ov = work.resolve("ov-busy");
    try (LazypullProcess p = serve(base, "busy", "--writable", "--overlay", ov.toString())) {
      LazypullProcess s =
          LazypullProcess.start(
              jar,
              work.resolve("lazypull-busy-snap"),
              "snapshot",
              "--overlay",
              ov.toString(),
              "--output",
              "oci:" + work.resolve("snap-busy") + ":s");
      try {
        assertNotEquals(0, s.awaitExit(60));
        assertTrue(
            s.output().contains("in use by another export (pid " + p.pid() + ")")
                && s.output().contains("--control"),
            s.output());
      } finally {
        s.close();
      }
      p.stop();
    }
  }

  /** Block maps as written decode and account for the data layer. */
  @Test
  void theSnapshotsBlockMapMatchesItsData() throws Exception {
    Path ov = work.resolve("ov-map");
    try (LazypullProcess p = serve(base, "map", "--writable", "--overlay", ov.toString())) {
      Requirements.run(
          "qemu-io",
          "-f",
          "raw",
          "-c",
          "write -P 0x11 4096 8192",
          "-c",
          "write -z 1048576 1048576",
          "-c",
          "discard 20971520 65536",
          uri("map"));
      p.stop();
    }
    Path snap = work.resolve("snap-map");
    assertEquals(
        0, Main.run("snapshot", "--overlay", ov.toString(), "--output", "oci:" + snap + ":s"));
    DiskImage img = image(snap, "s");
    DiskImage.Diff d = img.diffs().get(0);
    BlockMap m =
        BlockMap.decode(
            Files.readAllBytes(snap.resolve("blobs/sha256").resolve(d.map().digest().hex())));
    assertEquals(2, m.data().getLongCardinality(), "blocks 1 and 2");
    assertTrue(m.data().contains(1) && m.data().contains(2));
    assertEquals(
        256 + 16, m.zero().getLongCardinality(), "the zeroed MiB and the discarded 64 KiB");
    JsonNode ann = Json.MAPPER.valueToTree(img.manifest().annotations());
    assertEquals(Long.toString(Files.size(disk)), ann.path(DiskImage.ANNOTATION_SIZE).asText());
  }
}

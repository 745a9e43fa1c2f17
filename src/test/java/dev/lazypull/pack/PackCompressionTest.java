package dev.lazypull.pack;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.app.BlobByteSource;
import dev.lazypull.blob.ImageSource;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.cli.Main;
import dev.lazypull.erofs.DeviceSlot;
import dev.lazypull.erofs.ErofsReader;
import dev.lazypull.erofs.FileType;
import dev.lazypull.image.ChunkDataException;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestImages;
import dev.lazypull.testing.TestTrees;
import io.airlift.compress.zstd.ZstdInputStream;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data blobs of compressed chunks as {@code pack}, {@code convert} and {@code import} write them:
 * every chunk shape decodes back to the tree's bytes through the chunk digest table, the blob is
 * one valid zstd stream of the device, diff_ids are the devices' digests, the output is
 * reproducible, and {@code inspect} shows both sizes.
 */
class PackCompressionTest {
  @TempDir Path tmp;

  /**
   * Every chunk shape: empty, 1 byte, all zeros (a hole), incompressible, compressible, odd tails,
   * several chunks.
   */
  private Path tree() throws Exception {
    Path t = TestTrees.mixed(tmp.resolve("tree"), 7);
    Files.write(t.resolve("one-byte"), new byte[] {42});
    Files.write(t.resolve("zeros.bin"), new byte[3 << 20]);
    StringBuilder text = new StringBuilder();
    Random r = new Random(5);
    while (text.length() < (2 << 20) + 777) {
      text.append("line ").append(r.nextInt(1000)).append(" of a compressible text file\n");
    }
    Files.writeString(t.resolve("text.txt"), text);
    byte[] mixed = new byte[(1 << 20) + 4096];
    r.nextBytes(mixed);
    Arrays.fill(mixed, 1 << 19, 1 << 20, (byte) 0); // half a chunk of zeros inside data
    Files.write(t.resolve("half-zero.bin"), mixed);
    Files.write(t.resolve("one-block-tail.bin"), new byte[4096 + 1]);
    return t;
  }

  private String run(String... args) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    PrintStream old = System.out;
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    try {
      assertEquals(0, Main.run(args), String.join(" ", args));
    } finally {
      System.setOut(old);
    }
    return out.toString(StandardCharsets.UTF_8).trim();
  }

  private String pack(Path src, String tag, String... extra) throws Exception {
    List<String> args = new ArrayList<>(List.of("pack", src.toString()));
    args.addAll(List.of(extra));
    args.addAll(List.of("--output", "oci:" + tmp.resolve("layout") + ":" + tag));
    return run(args.toArray(String[]::new));
  }

  private ImageSource source(String ref) throws Exception {
    return ImageSources.localOnly().open(ref);
  }

  /**
   * The devices of an image, rebuilt from its compressed blobs entry by entry through {@link
   * ChunkDigestTable#unpack}.
   */
  static List<byte[]> devices(ImageSource s, LazyImage img) throws Exception {
    List<byte[]> out = new ArrayList<>();
    for (int i = 0; i < img.blobs().size(); i++) {
      Descriptor blob = img.blobs().get(i);
      byte[] stored = s.readRange(blob, 0, (int) blob.size());
      ChunkDigestTable t =
          ChunkDigestTable.decode(
              s.readRange(img.chunkTable(i), 0, (int) img.chunkTable(i).size()), blob);
      assertEquals(blob.size(), t.storedSize());
      assertEquals(img.deviceSize(i), t.blobSize());
      ByteBuffer device = ByteBuffer.allocateDirect((int) t.blobSize());
      for (int e = 0; e < t.size(); e++) {
        assertEquals(t.offset(e), device.position());
        t.unpack(
            e, ByteBuffer.wrap(stored, (int) t.compressedOffset(e), t.compressedLength(e)), device);
      }
      assertEquals(device.capacity(), device.position());
      byte[] b = new byte[device.capacity()];
      device.flip().get(b);
      out.add(b);
    }
    return out;
  }

  /** Reads every regular file of the image from its devices and compares it with the tree. */
  static int checkFiles(ImageSource s, LazyImage img, List<byte[]> devices, Path tree)
      throws Exception {
    ErofsReader r = ErofsReader.open(new BlobByteSource(s.blobs(), img.bootstrap()));
    int[] files = {0};
    r.walk(
        (path, inode) -> {
          if (inode.type() != FileType.REGULAR) {
            return;
          }
          byte[] want = Files.readAllBytes(tree.resolve(new String(path, StandardCharsets.UTF_8)));
          byte[] got = new byte[(int) inode.size()];
          if (inode.size() > 0) {
            int bits = r.chunkBits(inode);
            r.chunks(
                inode,
                c -> {
                  long at = (long) c.index() << bits;
                  int len = (int) Math.min(1L << bits, inode.size() - at);
                  if (!c.isHole()) {
                    System.arraycopy(
                        devices.get(c.device() - 1),
                        (int) (c.blkaddr() * 4096),
                        got,
                        (int) at,
                        len);
                  }
                });
          }
          assertArrayEquals(want, got, new String(path, StandardCharsets.UTF_8));
          files[0]++;
        });
    return files[0];
  }

  @Test
  void everyChunkShapeRoundTripsThroughCompressedBlobs() throws Exception {
    Path t = tree();
    pack(t, "z", "--compression", "zstd");
    ImageSource s = source("oci:" + tmp.resolve("layout") + ":z");
    LazyImage img = s.resolve();
    assertEquals(1, img.blobs().size());
    Descriptor blob = img.blobs().get(0);
    assertEquals(MediaTypes.EROFS_BLOB_ZSTD, blob.mediaType());
    assertTrue(
        img.deviceSize(0) > blob.size(),
        "compressible files make the blob smaller than its device");
    List<byte[]> devices = devices(s, img);
    assertTrue(checkFiles(s, img, devices, t) > 60);
    // the device table counts the device, not the stored blob
    ErofsReader r = ErofsReader.open(new BlobByteSource(s.blobs(), img.bootstrap()));
    DeviceSlot slot = r.header().devices().get(0);
    assertEquals(img.deviceSize(0) / 4096, slot.blocks());
    assertEquals(blob.digest().hex(), slot.tag());
    // the blob is one valid zstd stream of the device (any standard decoder, here aircompressor's)
    byte[] stored = s.readRange(blob, 0, (int) blob.size());
    byte[] all = new ZstdInputStream(new ByteArrayInputStream(stored)).readAllBytes();
    assertArrayEquals(devices.get(0), all);
    // diff_id = sha256 of the device
    JsonNode config =
        Json.MAPPER.readTree(
            s.readRange(img.manifest().config(), 0, (int) img.manifest().config().size()));
    String device = "sha256:" + HexFormat.of().formatHex(Digest.sha256().digest(all));
    assertEquals(device, config.path("rootfs").path("diff_ids").get(1).asText());
    assertEquals(
        img.bootstrap().digest().toString(),
        config.path("rootfs").path("diff_ids").get(0).asText());

    // the same tree raw: same device bytes, same bootstrap except the device table
    pack(t, "raw", "--compression", "none");
    ImageSource rs = source("oci:" + tmp.resolve("layout") + ":raw");
    LazyImage raw = rs.resolve();
    assertEquals(MediaTypes.EROFS_BLOB, raw.blobs().get(0).mediaType());
    assertEquals(raw.blobs().get(0).size(), img.deviceSize(0));
    assertArrayEquals(
        rs.readRange(raw.blobs().get(0), 0, (int) raw.blobs().get(0).size()), devices.get(0));
    assertEquals(
        raw.blobs().get(0).digest().toString(),
        device,
        "the raw blob is the compressed one's device");
    ChunkDigestTable v1 =
        ChunkDigestTable.decode(
            rs.readRange(raw.chunkTable(0), 0, (int) raw.chunkTable(0).size()), raw.blobs().get(0));
    assertEquals(1, v1.version());
    assertEquals(v1.storedSize(), v1.blobSize());
  }

  @Test
  void compressedOutputIsReproducibleAtAnyThreadCountAndLevelMatters() throws Exception {
    Path t = tree();
    String a = pack(t, "a", "--compression", "zstd", "--threads", "1");
    String b = pack(t, "b", "--compression", "zstd", "--threads", "3");
    String c = pack(t, "c", "--compression", "zstd", "--compression-level", "9");
    String d = pack(t, "d", "--compression", "none");
    assertEquals(a, b);
    assertNotEquals(a, c);
    assertNotEquals(a, d);
    String a2 =
        pack(t, "a2", "--compression", "zstd", "--threads", "2", "--compression-level", "3");
    assertEquals(a, a2);
  }

  @Test
  void blobCapCountsStoredBytes() throws Exception {
    Path t = tree();
    pack(t, "cap", "--compression", "zstd", "--blob-size-cap", "2M");
    ImageSource s = source("oci:" + tmp.resolve("layout") + ":cap");
    LazyImage img = s.resolve();
    assertTrue(img.blobs().size() >= 3, "blobs: " + img.blobs().size());
    for (Descriptor b : img.blobs()) {
      assertTrue(b.size() <= 2 << 20, b.toString());
    }
    checkFiles(s, img, devices(s, img), t);
  }

  @Test
  void inspectShowsStoredAndUncompressedSizes() throws Exception {
    pack(tree(), "i", "--compression", "zstd");
    String ref = "oci:" + tmp.resolve("layout") + ":i";
    String text = run("inspect", ref);
    assertTrue(text.contains("stored, zstd of"), text);
    assertTrue(text.contains("file data:"), text);
    JsonNode json = Json.MAPPER.readTree(run("inspect", "--json", ref));
    LazyImage img = source(ref).resolve();
    assertEquals(img.blobs().get(0).size(), json.path("dataStoredBytes").asLong());
    assertEquals(img.deviceSize(0), json.path("dataUncompressedBytes").asLong());
    assertEquals("zstd", json.path("devices").get(0).path("compression").asText());
    assertEquals(
        String.valueOf(img.deviceSize(0)),
        json.path("blobs")
            .get(0)
            .path("annotations")
            .path(LazyManifests.ANNOTATION_UNCOMPRESSED_SIZE)
            .asText());
  }

  @Test
  void refusesBadCompressionOptions() throws Exception {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream old = System.err;
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      Path t = Files.createDirectories(tmp.resolve("small"));
      assertEquals(
          1,
          Main.run(
              "pack", t.toString(), "--compression", "lz5", "--output", "oci:" + tmp.resolve("x")));
      assertEquals(
          1,
          Main.run(
              "pack",
              t.toString(),
              "--compression-level",
              "99",
              "--compression",
              "zstd",
              "--output",
              "oci:" + tmp.resolve("x")));
    } finally {
      System.setErr(old);
    }
    String msg = err.toString(StandardCharsets.UTF_8);
    assertTrue(msg.contains("unknown compression 'lz5'"), msg);
    assertTrue(msg.contains("--compression-level"), msg);
  }

  @Test
  void convertWritesCompressedBlobsReproducibly() throws Exception {
    Requirements.requireTool("tar");
    Path t = tree();
    Path layer = tmp.resolve("layer.tar.gz");
    Requirements.run(
        "bash",
        "-c",
        "tar --sort=name --format=pax -C '" + t + "' -cf - . | gzip -n > '" + layer + "'");
    TestImages.write(
        tmp.resolve("src"),
        "v1",
        List.of(new TestImages.Layer(layer, layer, MediaTypes.OCI_LAYER_TAR_GZIP)));
    String m1 =
        run(
            "convert",
            "--compression",
            "zstd",
            "oci:" + tmp.resolve("src") + ":v1",
            "oci:" + tmp.resolve("o1") + ":c");
    String m2 =
        run(
            "convert",
            "--compression",
            "zstd",
            "--threads",
            "1",
            "oci:" + tmp.resolve("src") + ":v1",
            "oci:" + tmp.resolve("o2") + ":c");
    assertEquals(m1, m2);
    ImageSource s = source("oci:" + tmp.resolve("o1") + ":c");
    LazyImage img = s.resolve();
    assertTrue(img.hasCompressedBlobs());
    checkFiles(s, img, devices(s, img), t);
  }

  @Test
  void importCompressesMkfsBlobsWithoutMovingAByte() throws Exception {
    Requirements.requireTool("mkfs.erofs");
    Path t = tree();
    Path boot = tmp.resolve("boot.erofs");
    Path blob = tmp.resolve("blob.erofs");
    Requirements.run(
        "mkfs.erofs",
        "--quiet",
        "--chunksize=65536",
        "--blobdev=" + blob,
        "-T0",
        boot.toString(),
        t.toString());
    String ref = "oci:" + tmp.resolve("imp") + ":z";
    run(
        "import",
        boot.toString(),
        blob.toString(),
        "--compression",
        "zstd",
        "--chunk-size",
        "256K",
        "--output",
        ref);
    ImageSource s = source(ref);
    LazyImage img = s.resolve();
    assertEquals(MediaTypes.EROFS_BLOB_ZSTD, img.blobs().get(0).mediaType());
    assertEquals(Files.size(blob), img.deviceSize(0));
    assertEquals(
        Files.readAllBytes(boot).length,
        img.bootstrap().size(),
        "the bootstrap is stored as it is");
    List<byte[]> devices = devices(s, img);
    assertArrayEquals(Files.readAllBytes(blob), devices.get(0));
    checkFiles(s, img, devices, t);
    String again =
        run(
            "import",
            boot.toString(),
            blob.toString(),
            "--compression",
            "zstd",
            "--chunk-size",
            "256K",
            "--output",
            "oci:" + tmp.resolve("imp2") + ":z");
    assertEquals(img.manifestDigest().toString(), again);
    // and raw, as before: no tables
    run(
        "import",
        boot.toString(),
        blob.toString(),
        "--compression",
        "none",
        "--output",
        "oci:" + tmp.resolve("imp") + ":raw");
    LazyImage raw = source("oci:" + tmp.resolve("imp") + ":raw").resolve();
    assertTrue(raw.chunkTables().isEmpty());
    assertEquals(MediaTypes.EROFS_BLOB, raw.blobs().get(0).mediaType());
  }

  @Test
  void unpackRefusesCorruptStoredBytes() throws Exception {
    pack(tree(), "u", "--compression", "zstd");
    ImageSource s = source("oci:" + tmp.resolve("layout") + ":u");
    LazyImage img = s.resolve();
    Descriptor blob = img.blobs().get(0);
    byte[] stored = s.readRange(blob, 0, (int) blob.size());
    ChunkDigestTable t =
        ChunkDigestTable.decode(
            s.readRange(img.chunkTable(0), 0, (int) img.chunkTable(0).size()), blob);
    Map<String, Integer> failures = new HashMap<>();
    ByteBuffer dst = ByteBuffer.allocateDirect(t.maxLength());
    for (int e = 0; e < t.size(); e++) {
      byte[] bad =
          Arrays.copyOfRange(stored, (int) t.compressedOffset(e), (int) t.compressedEnd(e));
      bad[bad.length / 2] ^= 0x55;
      int entry = e;
      ChunkDataException x =
          assertThrows(
              ChunkDataException.class, () -> t.unpack(entry, ByteBuffer.wrap(bad), dst.clear()));
      assertEquals(e, x.entry());
      failures.merge(x.getMessage().contains("sha256") ? "digest" : "frame", 1, Integer::sum);
      byte[] cut = Arrays.copyOf(bad, bad.length - 1);
      assertThrows(
          ChunkDataException.class, () -> t.unpack(entry, ByteBuffer.wrap(cut), dst.clear()));
    }
    assertTrue(failures.size() >= 1, failures.toString());
  }
}

package dev.lazypull.nbd.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.compress.Compression;
import dev.lazypull.fetch.BlobCacheDir;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.image.BlockMap;
import dev.lazypull.image.DiskImage;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.nbd.server.ExportDevice;
import dev.lazypull.oci.OciLayout;
import dev.lazypull.pack.DiskImporter;
import dev.lazypull.pack.OciLayoutOutput;
import dev.lazypull.testing.TestFetch;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.roaringbitmap.RoaringBitmap;

/**
 * Disk images: {@code import --disk} into a layout and the device {@code lazypull nbd} serves from
 * it (every byte the file's, all-zero chunks as zero runs never fetched, a damaged chunk refused),
 * and diffs laid over a disk (every block from the right layer, checked against a brute-force
 * reading).
 */
class DiskDevicesTest {
  static final Duration T = Duration.ofSeconds(10);
  static final int UNIT = 64 << 10;
  @TempDir Path dir;
  private final FetchCore core = TestFetch.core(UNIT, 4 * UNIT);
  private BlobCacheDir cache;

  @BeforeEach
  void open() throws IOException {
    cache = BlobCacheDir.open(dir.resolve("cache"), core);
  }

  @AfterEach
  void stop() {
    cache.close();
    core.close();
  }

  /** A disk of random bytes with all-zero stretches, {@code size} bytes (any size). */
  private static byte[] disk(int size) {
    byte[] b = new byte[size];
    new Random(5).nextBytes(b);
    Arrays.fill(b, UNIT, 3 * UNIT, (byte) 0); // two whole zero chunks
    Arrays.fill(b, 5 * UNIT + 100, 6 * UNIT, (byte) 0); // zeros inside a chunk that is not all zero
    return b;
  }

  private DiskImage importDisk(byte[] bytes, Compression c, String tag) throws IOException {
    Path f = dir.resolve("disk-" + tag + ".img");
    Files.write(f, bytes);
    Path layout = dir.resolve("layout");
    try (OciLayoutOutput out = new OciLayoutOutput(layout, tag)) {
      DiskImporter.Imported im = DiskImporter.importDisk(f, out, c, UNIT, 3);
      out.publish(im.manifest());
    }
    OciLayout oci = new OciLayout(layout, tag);
    var d = oci.findManifest();
    Manifest m = Json.parse(oci.readVerified(d), Manifest.class, "manifest");
    return DiskImage.of("oci:" + layout + ":" + tag, d.digest(), m);
  }

  private static byte[] readAll(ExportDevice dev) throws IOException {
    dev.prepare(0, dev.size()).join();
    ByteBuffer b = ByteBuffer.allocateDirect((int) dev.size());
    dev.read(0, b);
    byte[] out = new byte[(int) dev.size()];
    b.flip().get(out);
    return out;
  }

  @Test
  void anImportedDiskIsServedByteForByteWithItsZeroChunksAsHoles() throws IOException {
    for (Compression c : new Compression[] {Compression.ZSTD, Compression.NONE}) {
      byte[] bytes = disk(10 * UNIT + 1234); // not a whole number of 4 KiB blocks
      DiskImage img = importDisk(bytes, c, c.flag());
      assertEquals(bytes.length, img.size());
      assertEquals(
          c == Compression.ZSTD ? MediaTypes.DISK_ZSTD : MediaTypes.DISK, img.disk().mediaType());
      OciLayout oci = new OciLayout(dir.resolve("layout"), c.flag());
      ExportDevice dev = ImageDevices.disk(img, oci.blobs(), cache, T).device();
      assertEquals(bytes.length, dev.size());
      long before = core.stats().bytesFetched.sum();
      assertArrayEquals(bytes, readAll(dev), c.flag());
      long fetched = core.stats().bytesFetched.sum() - before;
      assertTrue(
          c == Compression.ZSTD
              ? fetched < bytes.length
              : fetched <= bytes.length - 2L * UNIT + 4096,
          "the zero chunks were never fetched: " + fetched);
      List<ExportDevice.Run> runs = dev.runs(0, dev.size());
      assertEquals(new ExportDevice.Run(UNIT, 2L * UNIT, true), runs.get(1), runs.toString());
      assertEquals(3, runs.size(), runs.toString());
    }
  }

  @Test
  void aDamagedChunkInTheLayoutIsRefusedNotServed() throws IOException {
    byte[] bytes = disk(8 * UNIT);
    DiskImage img = importDisk(bytes, Compression.ZSTD, "bad");
    Path blob = dir.resolve("layout/blobs/sha256").resolve(img.disk().digest().hex());
    byte[] stored = Files.readAllBytes(blob);
    stored[stored.length - 10] ^= 0x55; // inside the last chunk's frame
    Files.write(blob, stored);
    ExportDevice dev =
        ImageDevices.disk(img, new OciLayout(dir.resolve("layout"), "bad").blobs(), cache, T)
            .device();
    dev.prepare(0, UNIT).join(); // the first chunk is fine
    CompletionException e =
        assertThrows(CompletionException.class, () -> dev.prepare(7L * UNIT, UNIT).join());
    assertTrue(
        String.valueOf(e.getCause()).contains(img.disk().digest().toString()), String.valueOf(e));
    assertThrows(
        IOException.class,
        () -> dev.read(7L * UNIT, ByteBuffer.allocateDirect(100)),
        "never read unverified");
  }

  @Test
  void aFilesystemManifestIsNotADiskAndADiskIsNotAFilesystem() throws IOException {
    DiskImage img = importDisk(disk(8 * UNIT), Compression.ZSTD, "kinds");
    InvalidImageException e =
        assertThrows(
            InvalidImageException.class,
            () -> LazyImage.of("x", img.manifestDigest(), img.manifest()));
    assertTrue(e.getMessage().contains("is a disk image"), e.getMessage());
    Manifest truncated =
        new Manifest(
            2,
            MediaTypes.OCI_MANIFEST,
            null,
            img.manifest().config(),
            img.manifest().layers().subList(0, 1),
            img.manifest().annotations());
    e =
        assertThrows(
            InvalidImageException.class, () -> DiskImage.of("x", img.manifestDigest(), truncated));
    assertTrue(e.getMessage().contains("chunk digest table"), e.getMessage());
  }

  // ---- diffs over a disk
  // -----------------------------------------------------------------------------------

  /** A backing over bytes in memory, for diffs' packed data. */
  private static SegmentDevice.Backing bytesOf(byte[] b) {
    return SegmentDevice.bytes(b);
  }

  @Test
  void diffsLaidOverADiskGiveEveryBlockFromTheRightLayer() throws IOException {
    Random rnd = new Random(11);
    int bs = 4096;
    int blocks = 300;
    long size = (long) blocks * bs - 1000; // a short last block
    byte[] base = new byte[(int) size];
    rnd.nextBytes(base);
    Arrays.fill(base, 50 * bs, 80 * bs, (byte) 0); // a zero stretch of the disk
    List<long[]> baseData = List.of(new long[] {0, 50L * bs}, new long[] {80L * bs, size});
    byte[] expected = base.clone();
    List<DiffLayers.Layer> layers = new ArrayList<>();
    for (int k = 0; k < 4; k++) {
      RoaringBitmap data = new RoaringBitmap();
      RoaringBitmap zero = new RoaringBitmap();
      for (int b = 0; b < blocks; b++) {
        int r = rnd.nextInt(10);
        if (r < 2) {
          data.add(b);
        } else if (r < 3) {
          zero.add(b);
        }
      }
      byte[] packed = new byte[data.getCardinality() * bs];
      rnd.nextBytes(packed);
      int i = 0;
      for (int b : data) {
        int n = (int) Math.min(bs, size - (long) b * bs);
        System.arraycopy(packed, i * bs, expected, b * bs, n);
        i++;
      }
      for (int b : zero) {
        Arrays.fill(expected, b * bs, (int) Math.min(size, (long) (b + 1) * bs), (byte) 0);
      }
      layers.add(
          new DiffLayers.Layer(
              new BlockMap(bs, size, data, zero), packed.length == 0 ? null : bytesOf(packed)));
    }
    SegmentDevice dev = DiffLayers.compose(size, bytesOf(base), baseData, layers);
    assertArrayEquals(expected, readAll(dev));
    for (ExportDevice.Run run : dev.runs(0, size)) { // zero runs are all zero
      if (run.zero()) {
        for (long p = run.offset(); p < run.end(); p++) {
          assertEquals(0, expected[(int) p], "zero run at " + p);
        }
      }
    }
  }

  @Test
  void blockMapsRoundTripAndRefuseDamage() throws IOException {
    RoaringBitmap data = RoaringBitmap.bitmapOf(1, 2, 3, 700);
    RoaringBitmap zero = RoaringBitmap.bitmapOf(5, 6);
    BlockMap m = new BlockMap(4096, 1000L * 4096, data, zero);
    byte[] enc = m.encode();
    BlockMap back = BlockMap.decode(enc);
    assertEquals(data, back.data());
    assertEquals(zero, back.zero());
    // The layer's digest guards a map's bytes; the decoder itself never throws anything but an
    // IOException and
    // never returns a map that breaks its rules, whatever the bytes.
    for (int i = 0; i < enc.length; i++) {
      for (int bit = 0; bit < 8; bit++) {
        byte[] bad = enc.clone();
        bad[i] ^= (byte) (1 << bit);
        try {
          BlockMap d = BlockMap.decode(bad);
          assertTrue(!RoaringBitmap.intersects(d.data(), d.zero()), "byte " + i);
          assertTrue(
              d.data().isEmpty() || Integer.toUnsignedLong(d.data().last()) < d.blocks(),
              "byte " + i);
          assertTrue(
              d.zero().isEmpty() || Integer.toUnsignedLong(d.zero().last()) < d.blocks(),
              "byte " + i);
        } catch (IOException refused) {
          // refused with a reason
        }
      }
    }
    byte[] past =
        new BlockMap(4096, 10L * 4096, RoaringBitmap.bitmapOf(1), new RoaringBitmap()).encode();
    ByteBuffer.wrap(past).order(ByteOrder.LITTLE_ENDIAN).putLong(16, 4096); // one block only
    assertThrows(IOException.class, () -> BlockMap.decode(past));
  }
}

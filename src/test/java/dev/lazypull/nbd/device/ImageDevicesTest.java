package dev.lazypull.nbd.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.erofs.BootstrapHeader;
import dev.lazypull.erofs.BootstrapHeaderTest;
import dev.lazypull.erofs.Superblock;
import dev.lazypull.fetch.BlobCacheDir;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.nbd.server.ExportDevice;
import dev.lazypull.sys.Posix;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.MemoryBlobSource;
import dev.lazypull.testing.TestFetch;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageDevicesTest {
  static final Duration T = Duration.ofSeconds(5);
  @TempDir Path dir;
  private final FetchCore core = TestFetch.core(64 << 10, 256 << 10);
  private final MemoryBlobSource source = new MemoryBlobSource();
  private BlobCacheDir cache;

  @BeforeEach
  void open() throws IOException {
    cache = BlobCacheDir.open(dir, core);
  }

  @AfterEach
  void stop() {
    cache.close();
    core.close();
  }

  /** A bootstrap of {@code blocks} blocks whose block 0 is {@code head}, the rest random. */
  private byte[] bootstrap(ByteBuffer head, int blocks) {
    byte[] b = MemoryBlobSource.randomBytes(blocks * 4096, 1);
    System.arraycopy(head.array(), 0, b, 0, 4096);
    return b;
  }

  private LazyImage image(byte[] boot, byte[]... blobs) throws Exception {
    Descriptor bootDesc = source.add(boot, MediaTypes.EROFS_BOOTSTRAP);
    List<Descriptor> data =
        Arrays.stream(blobs).map(b -> source.add(b, MediaTypes.EROFS_BLOB)).toList();
    Descriptor config = new Descriptor(MediaTypes.OCI_CONFIG, Digest.of(new byte[] {1}), 1);
    return LazyImage.of(
        "test:image",
        Digest.of(new byte[] {2}),
        LazyManifests.manifest(config, bootDesc, data, Map.of()));
  }

  static byte[] readAll(ExportDevice d, long offset, int length) throws Exception {
    d.prepare(offset, length).get(5, TimeUnit.SECONDS);
    ByteBuffer buf = ByteBuffer.allocateDirect(length);
    d.read(offset, buf);
    byte[] out = new byte[length];
    buf.flip().get(out);
    return out;
  }

  @Test
  void computedLayoutPutsBlobsOnAlignedBlocksAndServesThePatchedHead() throws Exception {
    ByteBuffer head = BootstrapHeaderTest.block0(2, true, "");
    for (int i = 0; i < 2; i++) { // like mkfs.erofs 1.5: no blocks, no mapped_blkaddr
      head.putInt(9 * 128 + i * 128 + 64, 0).putInt(9 * 128 + i * 128 + 68, 0);
    }
    head.putInt(Superblock.OFFSET + 4, Superblock.computeChecksum(head, 4096));
    byte[] boot = bootstrap(head, 3);
    byte[] blob0 = MemoryBlobSource.randomBytes(200_000, 2); // 49 blocks, the last one padded
    byte[] blob1 = MemoryBlobSource.randomBytes(5000, 3);
    LazyImage img = image(boot, blob0, blob1);
    ImageDevices.Built built = ImageDevices.flattened(img, source, cache, T);
    assertTrue(built.layout().computed());
    ExportDevice d = built.device();
    assertEquals(
        (256 + 2) * 4096L,
        d.size(),
        "blob 0 at block 128 (512 KiB), blob 1 at the next 512 KiB: 256");

    byte[] all = readAll(d, 0, (int) d.size());
    BootstrapHeader served =
        BootstrapHeader.decode(ByteBuffer.wrap(all, 0, 4096)); // checksum verifies
    assertEquals(128, served.devices().get(0).mappedBlkaddr());
    assertEquals(49, served.devices().get(0).blocks());
    assertEquals(256, served.devices().get(1).mappedBlkaddr());
    assertEquals(2, served.devices().get(1).blocks());
    byte[] expected = new byte[(int) d.size()];
    System.arraycopy(boot, 0, expected, 0, boot.length);
    System.arraycopy(blob0, 0, expected, 128 * 4096, blob0.length);
    System.arraycopy(blob1, 0, expected, 256 * 4096, blob1.length);
    int headLen = (int) BootstrapHeader.bytesNeeded(served.superblock());
    assertArrayEquals(
        Arrays.copyOfRange(expected, headLen, expected.length),
        Arrays.copyOfRange(all, headLen, all.length),
        "everything past the head is the bootstrap, blobs, zeros");

    assertEquals(
        List.of(
            new ExportDevice.Run(0, 3 * 4096, false),
            new ExportDevice.Run(3 * 4096, 125 * 4096, true),
            new ExportDevice.Run(128 * 4096, 49 * 4096, false),
            new ExportDevice.Run(177 * 4096, 79 * 4096, true),
            new ExportDevice.Run(256 * 4096, 2 * 4096, false)),
        d.runs(0, d.size()));
  }

  @Test
  void aBootstrapNotMatchingItsDigestIsRefusedAndNeverCached() throws Exception {
    byte[] boot = bootstrap(BootstrapHeaderTest.block0(2, true, "t"), 2);
    LazyImage img =
        image(
            boot,
            MemoryBlobSource.randomBytes(100 * 4096, 4),
            MemoryBlobSource.randomBytes(101 * 4096 - 7, 5));
    byte[] tampered = boot.clone();
    tampered[6000] ^= 1; // outside the head the export reads first
    source.serveAs(img.bootstrap().digest(), tampered);
    ExpectedLogs.severe("integrity: blob " + img.bootstrap().digest() + " bytes 0+");
    IOException e =
        assertThrows(IOException.class, () -> ImageDevices.flattened(img, source, cache, T));
    assertTrue(e.getMessage().contains("fail their chunk digest"), e.getMessage());
    int fd = Posix.open(cache.pathOf(img.bootstrap().digest()).toString(), Posix.O_RDONLY, 0);
    try {
      assertEquals(-1, Posix.lseek(fd, 0, Posix.SEEK_DATA), "nothing cached");
    } finally {
      Posix.close(fd);
    }

    source.serveAs(img.bootstrap().digest(), boot);
    ImageDevices.Built built = ImageDevices.flattened(img, source, cache, T);
    assertArrayEquals(
        boot, readAll(built.device(), 0, boot.length), "served whole and verified once repaired");
  }

  @Test
  void slotsWithTheirOwnMappingAreServedUnchanged() throws Exception {
    byte[] boot =
        bootstrap(
            BootstrapHeaderTest.block0(2, true, "t"), 2); // slots: 100/101 blocks at 1000/2000
    LazyImage img =
        image(
            boot,
            MemoryBlobSource.randomBytes(100 * 4096, 4),
            MemoryBlobSource.randomBytes(101 * 4096 - 7, 5));
    ImageDevices.Built built = ImageDevices.flattened(img, source, cache, T);
    assertFalse(built.layout().computed());
    assertEquals((2000 + 101) * 4096L, built.device().size());
    assertArrayEquals(
        Arrays.copyOf(boot, 4096), readAll(built.device(), 0, 4096), "no patching needed");
  }

  @Test
  void onlyTheBlobsARangeTouchesAreFetched() throws Exception {
    byte[] boot = bootstrap(BootstrapHeaderTest.block0(1, true, "t"), 2);
    ByteBuffer h = ByteBuffer.wrap(boot).order(ByteOrder.LITTLE_ENDIAN);
    h.putInt(9 * 128 + 64, 40).putInt(9 * 128 + 68, 128);
    h.putInt(Superblock.OFFSET + 4, Superblock.computeChecksum(h, 4096));
    byte[] blob = MemoryBlobSource.randomBytes(40 * 4096, 6);
    LazyImage img = image(boot, blob);
    ExportDevice d = ImageDevices.flattened(img, source, cache, T).device();
    int afterHeader = source.requests.size();
    assertEquals(1, afterHeader, "opening read the bootstrap head only");
    assertArrayEquals(
        Arrays.copyOfRange(blob, 8192, 8192 + 100), readAll(d, 128 * 4096 + 8192, 100));
    assertEquals(afterHeader + 1, source.requests.size());
    assertEquals(img.blobs().get(0).digest(), source.requests.get(afterHeader).blob());
    assertEquals(0, source.requests.get(afterHeader).offset(), "one 64 KiB chunk of the blob");
    assertEquals(64 << 10, source.requests.get(afterHeader).length());
    readAll(d, 2 * 4096, 100 * 4096); // all zeros: nothing to fetch
    assertEquals(afterHeader + 1, source.requests.size());
    ByteBuffer unprepared = ByteBuffer.allocateDirect(10);
    assertThrows(IOException.class, () -> d.read(128 * 4096 + 30 * 4096, unprepared));
  }

  @Test
  void rawExportIsOneBlobByDigestOrPrefix() throws Exception {
    byte[] blob = MemoryBlobSource.randomBytes(10_001, 7);
    LazyImage img = image(bootstrap(BootstrapHeaderTest.block0(1, true, "t"), 1), blob);
    String hex = img.blobs().get(0).digest().hex();
    ImageDevices.Built built = ImageDevices.raw(img, hex.substring(0, 10), source, cache);
    assertEquals(10_001, built.device().size());
    assertArrayEquals(blob, readAll(built.device(), 0, 10_001));
    assertEquals(
        img.bootstrap(), ImageDevices.selectBlob(img, img.bootstrap().digest().toString()));
    assertThrows(IOException.class, () -> ImageDevices.selectBlob(img, "abc"), "too short");
    assertThrows(
        IOException.class, () -> ImageDevices.selectBlob(img, "0".repeat(64)), "not a layer");
  }

  @Test
  void imagesThatCannotBeFlattenedAreRefusedClearly() throws Exception {
    LazyImage mismatch =
        image(
            bootstrap(BootstrapHeaderTest.block0(2, true, "t"), 1),
            MemoryBlobSource.randomBytes(4096, 8));
    InvalidImageException e =
        assertThrows(
            InvalidImageException.class, () -> ImageDevices.flattened(mismatch, source, cache, T));
    assertTrue(e.getMessage().contains("device slots"), e.getMessage());
    LazyImage notErofs = image(MemoryBlobSource.randomBytes(8192, 9));
    assertThrows(
        InvalidImageException.class, () -> ImageDevices.flattened(notErofs, source, cache, T));
  }
}

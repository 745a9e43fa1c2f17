package dev.lazypull.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.compress.Compression;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/** The chunk digest table codec and the manifest layout that carries the tables. */
class ChunkDigestTableTest {
  private static final Digest D1 = new Digest("1".repeat(64));
  private static final Digest D2 = new Digest("2".repeat(64));
  private static final Digest T1 = new Digest("a".repeat(64));
  private static final Digest T2 = new Digest("b".repeat(64));

  private static ChunkDigestTable table() {
    ChunkDigestTable.Builder b = new ChunkDigestTable.Builder();
    b.add(4096, new byte[32]);
    b.add(8192, Digest.sha256().digest(new byte[8192]));
    return b.build();
  }

  @Test
  void roundTripsAndLooksUpEntries() throws Exception {
    byte[] bytes = table().encode();
    assertEquals(32 + 2 * 48, bytes.length);
    ChunkDigestTable t = ChunkDigestTable.decode(bytes, 12288);
    assertEquals(2, t.size());
    assertEquals(4096, t.offset(1));
    assertEquals(0, t.entryAt(4095));
    assertEquals(1, t.entryAt(4096));
    assertEquals(-1, t.entryAt(12288));
    assertTrue(t.verify(1, new byte[8192], 0, 8192));
  }

  @Test
  void rejectsMalformedTables() {
    byte[] good = table().encode();
    assertThrows(
        InvalidImageException.class, () -> ChunkDigestTable.decode(good, 4096), "wrong blob size");
    byte[] magic = good.clone();
    magic[0] = 'X';
    assertThrows(InvalidImageException.class, () -> ChunkDigestTable.decode(magic, 12288));
    byte[] gap = good.clone();
    ByteBuffer.wrap(gap)
        .order(ByteOrder.LITTLE_ENDIAN)
        .putLong(32 + 48, 8192); // entry 1 not contiguous
    assertThrows(InvalidImageException.class, () -> ChunkDigestTable.decode(gap, 12288));
    byte[] count = good.clone();
    ByteBuffer.wrap(count).order(ByteOrder.LITTLE_ENDIAN).putLong(24, Long.MAX_VALUE);
    assertThrows(InvalidImageException.class, () -> ChunkDigestTable.decode(count, 12288));
    assertThrows(InvalidImageException.class, () -> ChunkDigestTable.decode(new byte[10], 0));
  }

  @Test
  void lazyImagesExposeTrailingTablesAndRejectMismatches() throws Exception {
    Descriptor boot = new Descriptor(MediaTypes.EROFS_BOOTSTRAP, new Digest("0".repeat(64)), 4096);
    Descriptor config = new Descriptor(MediaTypes.OCI_CONFIG, new Digest("c".repeat(64)), 10);
    List<Descriptor> blobs =
        List.of(
            new Descriptor(MediaTypes.EROFS_BLOB, D1, 8192),
            new Descriptor(MediaTypes.EROFS_BLOB, D2, 4096));
    List<Descriptor> tables =
        List.of(
            new Descriptor(MediaTypes.CHUNK_DIGESTS, T1, 128),
            new Descriptor(MediaTypes.CHUNK_DIGESTS, T2, 80));
    Manifest m = LazyManifests.manifest(config, boot, blobs, tables, Map.of());
    LazyImage img = LazyImage.of("x", D1, m);
    assertEquals(List.of(D1, D2), img.blobs().stream().map(Descriptor::digest).toList());
    assertEquals(T2, img.chunkTable(1).digest());
    assertEquals(3, img.allBlobs().size(), "the tables are not read at mount time");
    assertEquals(
        T1.toString(), img.blobs().get(0).annotation(LazyManifests.ANNOTATION_CHUNK_DIGESTS));

    Manifest swapped =
        LazyManifests.manifest(
            config, boot, blobs, List.of(tables.get(1), tables.get(0)), Map.of());
    List<Descriptor> layers = new ArrayList<>(swapped.layers());
    layers.set(
        3,
        new Descriptor(
            MediaTypes.CHUNK_DIGESTS,
            T2,
            80,
            Map.of(LazyManifests.ANNOTATION_CHUNK_DIGESTS_BLOB, D2.toString()),
            null));
    Manifest wrongOrder = new Manifest(2, MediaTypes.OCI_MANIFEST, null, config, layers, Map.of());
    assertThrows(InvalidImageException.class, () -> LazyImage.of("x", D1, wrongOrder));
    List<Descriptor> blobAfterTable = new ArrayList<>(m.layers());
    blobAfterTable.add(blobs.get(0));
    assertThrows(
        InvalidImageException.class,
        () ->
            LazyImage.of(
                "x",
                D1,
                new Manifest(2, MediaTypes.OCI_MANIFEST, null, config, blobAfterTable, Map.of())));
  }

  private static ChunkDigestTable v2() {
    ChunkDigestTable.Builder b = new ChunkDigestTable.Builder(Compression.ZSTD);
    b.add(4096, 100, new byte[32]);
    b.add(1 << 20, (1 << 20) + 40, Digest.sha256().digest(new byte[8192]));
    b.add(8192, 7, new byte[32]);
    return b.build();
  }

  @Test
  void version2RoundTripsWithStoredGeometry() throws Exception {
    byte[] bytes = v2().encode();
    assertEquals(48 + 3 * 56, bytes.length);
    long stored = 100 + (1 << 20) + 40 + 7;
    long device = 4096 + (1 << 20) + 8192;
    ChunkDigestTable t = ChunkDigestTable.decode(bytes, stored);
    assertEquals(2, t.version());
    assertTrue(t.isCompressed());
    assertEquals(device, t.blobSize());
    assertEquals(stored, t.storedSize());
    assertEquals(4096, t.offset(1));
    assertEquals(100, t.compressedOffset(1));
    assertEquals((1 << 20) + 40, t.compressedLength(1));
    assertEquals(100 + (1 << 20) + 40, t.compressedOffset(2));
    assertEquals(stored, t.compressedEnd(2));
    assertEquals(1 << 20, t.maxLength());
    assertEquals(2, t.entryAt(device - 1));
    assertEquals(Arrays.toString(bytes), Arrays.toString(t.encode()));
    // version 1 tables answer the same questions with the identity geometry
    ChunkDigestTable v1 = ChunkDigestTable.decode(table().encode(), 12288);
    assertEquals(1, v1.version());
    assertEquals(v1.offset(1), v1.compressedOffset(1));
    assertEquals(v1.length(1), v1.compressedLength(1));
    assertEquals(12288, v1.storedSize());
    // decoding against a descriptor also checks the media type and the uncompressed size
    Descriptor zblob =
        new Descriptor(
            MediaTypes.EROFS_BLOB_ZSTD,
            D1,
            stored,
            Map.of(LazyManifests.ANNOTATION_UNCOMPRESSED_SIZE, Long.toString(device)),
            null);
    assertEquals(device, ChunkDigestTable.decode(bytes, zblob).blobSize());
    Descriptor wrongSize =
        new Descriptor(
            MediaTypes.EROFS_BLOB_ZSTD,
            D1,
            stored,
            Map.of(LazyManifests.ANNOTATION_UNCOMPRESSED_SIZE, Long.toString(device + 4096)),
            null);
    assertThrows(InvalidImageException.class, () -> ChunkDigestTable.decode(bytes, wrongSize));
    assertThrows(
        InvalidImageException.class,
        () -> ChunkDigestTable.decode(bytes, new Descriptor(MediaTypes.EROFS_BLOB, D1, stored)),
        "a raw blob with a version 2 table");
    assertThrows(
        InvalidImageException.class,
        () ->
            ChunkDigestTable.decode(
                table().encode(),
                new Descriptor(
                    MediaTypes.EROFS_BLOB_ZSTD,
                    D1,
                    12288,
                    Map.of(LazyManifests.ANNOTATION_UNCOMPRESSED_SIZE, "12288"),
                    null)),
        "a compressed blob, version 1");
  }

  @Test
  void version2RejectsOverlapsGapsOversizedFramesAndBadHeaders() {
    byte[] good = v2().encode();
    long stored = 100 + (1 << 20) + 40 + 7;
    BiConsumer<String, Consumer<ByteBuffer>> bad =
        (what, patch) -> {
          byte[] b = good.clone();
          patch.accept(ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN));
          assertThrows(InvalidImageException.class, () -> ChunkDigestTable.decode(b, stored), what);
        };
    int e1 = 48 + 56;
    int e2 = 48 + 2 * 56;
    bad.accept("stored overlap", b -> b.putLong(e1 + 16, 99));
    bad.accept("stored gap", b -> b.putLong(e1 + 16, 101));
    bad.accept(
        "frame larger than its chunk can be",
        b -> {
          b.putInt(e2 + 12, 8192 + 8192);
          b.putLong(32, 100 + (1 << 20) + 40 + 8192 + 8192);
        });
    bad.accept("zero-length frame", b -> b.putInt(e2 + 12, 0));
    bad.accept("negative frame", b -> b.putInt(e2 + 12, -7));
    bad.accept("uncompressed gap", b -> b.putLong(e1, 8192));
    bad.accept("entry over 16 MiB", b -> b.putInt(e1 + 8, 32 << 20));
    bad.accept("unaligned entry", b -> b.putInt(e2 + 8, 8000));
    bad.accept("stored size lies", b -> b.putLong(32, stored + 1));
    bad.accept("device size lies", b -> b.putLong(16, 4096));
    bad.accept("unknown compression", b -> b.putInt(40, 9));
    bad.accept("compression none in version 2", b -> b.putInt(40, 0));
    bad.accept("reserved", b -> b.putInt(44, 1));
    bad.accept("count", b -> b.putLong(24, 4));
    bad.accept("huge count", b -> b.putLong(24, Long.MAX_VALUE / 2));
    bad.accept("version 3", b -> b.putInt(8, 3));
    assertThrows(
        InvalidImageException.class, () -> ChunkDigestTable.decode(Arrays.copyOf(good, 40), 0));
    assertThrows(
        InvalidImageException.class,
        () -> ChunkDigestTable.decode(good, stored + 1),
        "descriptor size");
    assertThrows(
        IllegalArgumentException.class,
        () -> new ChunkDigestTable.Builder(Compression.ZSTD).add(4096, 4096 + 4096, new byte[32]),
        "writer bound too");
  }

  @Test
  void compressedBlobsNeedTheirDeviceSizeAndTables() throws Exception {
    Descriptor boot = new Descriptor(MediaTypes.EROFS_BOOTSTRAP, new Digest("0".repeat(64)), 4096);
    Descriptor config = new Descriptor(MediaTypes.OCI_CONFIG, new Digest("c".repeat(64)), 10);
    Descriptor z =
        new Descriptor(
            MediaTypes.EROFS_BLOB_ZSTD,
            D1,
            1000,
            Map.of(LazyManifests.ANNOTATION_UNCOMPRESSED_SIZE, "8192"),
            null);
    Descriptor raw = new Descriptor(MediaTypes.EROFS_BLOB, D2, 4096);
    List<Descriptor> tables =
        List.of(
            new Descriptor(MediaTypes.CHUNK_DIGESTS, T1, 160),
            new Descriptor(MediaTypes.CHUNK_DIGESTS, T2, 80));
    Manifest m = LazyManifests.manifest(config, boot, List.of(z, raw), tables, Map.of());
    assertEquals("8192", m.layers().get(1).annotation(LazyManifests.ANNOTATION_UNCOMPRESSED_SIZE));
    assertEquals(
        T1.toString(), m.layers().get(1).annotation(LazyManifests.ANNOTATION_CHUNK_DIGESTS));
    assertEquals(MediaTypes.EROFS_BLOB_ZSTD, m.layers().get(1).mediaType());
    LazyImage img = LazyImage.of("x", D1, Json.MAPPER.readValue(Json.write(m), Manifest.class));
    assertEquals(8192, img.deviceSize(0));
    assertEquals(4096, img.deviceSize(1));
    assertEquals(List.of(8192L, 4096L), img.deviceSizes());
    assertTrue(img.hasCompressedBlobs());
    assertTrue(LazyImage.isCompressed(img.blobs().get(0)));
    for (String size :
        new String[] {null, "", "x", "0", "-4096", "4097", Long.toString(1L << 45)}) {
      Map<String, String> ann =
          size == null ? Map.of() : Map.of(LazyManifests.ANNOTATION_UNCOMPRESSED_SIZE, size);
      Descriptor badZ = new Descriptor(MediaTypes.EROFS_BLOB_ZSTD, D1, 1000, ann, null);
      List<Descriptor> layers = new ArrayList<>(m.layers());
      layers.set(1, badZ);
      Manifest bad = new Manifest(2, MediaTypes.OCI_MANIFEST, null, config, layers, Map.of());
      assertThrows(InvalidImageException.class, () -> LazyImage.of("x", D1, bad), "size " + size);
    }
    Manifest noTables = LazyManifests.manifest(config, boot, List.of(z), Map.of());
    InvalidImageException e =
        assertThrows(InvalidImageException.class, () -> LazyImage.of("x", D1, noTables));
    assertTrue(e.getMessage().contains("without chunk digest tables"), e.getMessage());
  }
}

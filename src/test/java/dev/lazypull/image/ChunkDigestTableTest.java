package dev.lazypull.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;
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
    assertThrows(InvalidImageException.class, () -> ChunkDigestTable.decode(good, 4096), "wrong blob size");
    byte[] magic = good.clone();
    magic[0] = 'X';
    assertThrows(InvalidImageException.class, () -> ChunkDigestTable.decode(magic, 12288));
    byte[] gap = good.clone();
    ByteBuffer.wrap(gap).order(ByteOrder.LITTLE_ENDIAN).putLong(32 + 48, 8192); // entry 1 not contiguous
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
    List<Descriptor> blobs = List.of(new Descriptor(MediaTypes.EROFS_BLOB, D1, 8192),
        new Descriptor(MediaTypes.EROFS_BLOB, D2, 4096));
    List<Descriptor> tables = List.of(new Descriptor(MediaTypes.CHUNK_DIGESTS, T1, 128),
        new Descriptor(MediaTypes.CHUNK_DIGESTS, T2, 80));
    Manifest m = LazyManifests.manifest(config, boot, blobs, tables, Map.of());
    LazyImage img = LazyImage.of("x", D1, m);
    assertEquals(List.of(D1, D2), img.blobs().stream().map(Descriptor::digest).toList());
    assertEquals(T2, img.chunkTable(1).digest());
    assertEquals(3, img.allBlobs().size(), "the tables are not read at mount time");
    assertEquals(T1.toString(), img.blobs().get(0).annotation(LazyManifests.ANNOTATION_CHUNK_DIGESTS));

    Manifest swapped = LazyManifests.manifest(config, boot, blobs, List.of(tables.get(1), tables.get(0)), Map.of());
    List<Descriptor> layers = new java.util.ArrayList<>(swapped.layers());
    layers.set(3, new Descriptor(MediaTypes.CHUNK_DIGESTS, T2, 80,
        Map.of(LazyManifests.ANNOTATION_CHUNK_DIGESTS_BLOB, D2.toString()), null));
    Manifest wrongOrder = new Manifest(2, MediaTypes.OCI_MANIFEST, null, config, layers, Map.of());
    assertThrows(InvalidImageException.class, () -> LazyImage.of("x", D1, wrongOrder));
    List<Descriptor> blobAfterTable = new java.util.ArrayList<>(m.layers());
    blobAfterTable.add(blobs.get(0));
    assertThrows(InvalidImageException.class, () -> LazyImage.of("x", D1,
        new Manifest(2, MediaTypes.OCI_MANIFEST, null, config, blobAfterTable, Map.of())));
  }
}

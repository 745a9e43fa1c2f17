package dev.lazypull.index;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.erofs.ByteSource;
import dev.lazypull.erofs.ErofsReader;
import dev.lazypull.erofs.FileType;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.pack.OciLayoutOutput;
import dev.lazypull.pack.Progress;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestImages;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Side-car indexes end to end in one JVM: an ordinary three-layer image (gzip, gzip with a whiteout
 * and an opaque directory, uncompressed tar) in an OCI layout, indexed; every file read back
 * through the bootstrap and the virtual devices equals the merged tree; every device byte matches
 * its digest table; a tampered layer byte is an error, never other bytes; an image without an index
 * says how to make one; --index-locally builds one.
 */
class IndexedImageTest {
  @TempDir Path tmp;
  private Path layout;
  private final Map<String, byte[]> expected = new TreeMap<>();

  private static byte[] random(Random r, int n, boolean compressible) {
    byte[] b = new byte[n];
    if (compressible) {
      for (int i = 0; i < n; i++) {
        b[i] =
            (byte)
                ("lazypull side-car index ".charAt((i * 7 + i / 97) % 24)
                    + (r.nextInt(16) == 0 ? 1 : 0));
      }
    } else {
      r.nextBytes(b);
    }
    return b;
  }

  private void file(Path root, String path, byte[] data, boolean expect) throws IOException {
    Path p = root.resolve(path);
    Files.createDirectories(p.getParent());
    Files.write(p, data);
    if (expect) {
      expected.put(path, data);
    }
  }

  @BeforeEach
  void image() throws Exception {
    Requirements.requireTool("tar");
    Requirements.requireTool("gzip");
    Random r = new Random(14);
    Path l1 = tmp.resolve("l1");
    file(l1, "usr/lib/a.txt", "version one\n".getBytes(StandardCharsets.UTF_8), false);
    file(l1, "usr/lib/big.bin", random(r, 3 << 20, false), true);
    file(l1, "usr/lib/text.txt", random(r, 5 << 20, true), true);
    file(l1, "usr/share/empty", new byte[0], true);
    for (int i = 0; i < 200; i++) {
      file(l1, "usr/small/f" + i, random(r, r.nextInt(9000) + 1, i % 2 == 0), true);
    }
    file(l1, "opq/old1", "old".getBytes(StandardCharsets.UTF_8), false);
    file(l1, "opq/sub/old2", "old".getBytes(StandardCharsets.UTF_8), false);
    file(l1, "gone.txt", "bye".getBytes(StandardCharsets.UTF_8), false);
    Files.createSymbolicLink(l1.resolve("usr/link"), Path.of("lib/a.txt"));
    Path l2 = tmp.resolve("l2");
    file(l2, "usr/lib/a.txt", "version two\n".getBytes(StandardCharsets.UTF_8), true);
    file(l2, ".wh.gone.txt", new byte[0], false);
    file(l2, "opq/.wh..wh..opq", new byte[0], false);
    file(l2, "opq/new", random(r, 70000, true), true);
    Path l3 = tmp.resolve("l3");
    file(l3, "extra/z.bin", random(r, 100_000, false), true);
    file(l3, "extra/y.txt", "plain tar\n".getBytes(StandardCharsets.UTF_8), true);
    layout = tmp.resolve("layout");
    TestImages.write(
        layout,
        "v1",
        List.of(
            TestImages.tarOf(l1, tmp.resolve("l1.tgz"), "gzip"),
            TestImages.tarOf(l2, tmp.resolve("l2.tgz"), "gzip"),
            TestImages.tarOf(l3, tmp.resolve("l3.tar"), "none")));
  }

  private IndexedImages indexes() {
    return new IndexedImages(new IndexStore(tmp.resolve("store")), new SpanCache(8 << 20));
  }

  private IndexedImages.Source open(IndexedImages idx) throws IOException {
    return (IndexedImages.Source)
        new ImageSources(
                ref -> {
                  throw new IOException("no registry here");
                },
                idx)
            .open("oci:" + layout + ":v1");
  }

  /** Indexes the image into its own layout at a 64 KiB span (many checkpoints). */
  private IndexBuilder.Result index(IndexedImages.Source src) throws IOException {
    IndexedImages.Subject s = src.subject();
    try (OciLayoutOutput out =
        new OciLayoutOutput(layout, IndexArtifact.localTag(s.descriptor().digest()))) {
      return src.build(
          s,
          IndexBuilder.Options.defaults().withSpanSize(64 << 10).withEntrySize(64 << 10),
          out,
          Progress.silent());
    }
  }

  /**
   * Every regular file of the image, read through the bootstrap's chunk indexes and the devices.
   */
  static Map<String, byte[]> readAll(LazyImage img, BlobSource blobs) throws IOException {
    byte[] boot = blobs.read(img.bootstrap(), 0, (int) img.bootstrap().size());
    ErofsReader er = ErofsReader.open(ByteSource.of(boot));
    Map<String, byte[]> out = new TreeMap<>();
    er.walk(
        (path, inode) -> {
          if (inode.type() != FileType.REGULAR) {
            return;
          }
          byte[] data = new byte[(int) inode.size()];
          int at = 0;
          for (ErofsReader.Extent e : er.dataExtents(inode)) {
            assertTrue(e.device() >= 1, "file data lives on the devices");
            byte[] part = blobs.read(img.blobs().get(e.device() - 1), e.offset(), (int) e.length());
            System.arraycopy(part, 0, data, at, part.length);
            at += part.length;
          }
          out.put(new String(path, StandardCharsets.UTF_8), data);
        });
    return out;
  }

  @Test
  void anIndexedImageReadsBackAsItsMergedTreeAndEveryDeviceByteMatchesItsTable() throws Exception {
    IndexedImages idx = indexes();
    IndexedImages.Source src = open(idx);
    InvalidImageException none = assertThrows(InvalidImageException.class, src::resolve);
    assertTrue(
        none.getMessage().contains("lazypull index")
            && none.getMessage().contains("--index-locally"),
        none.getMessage());

    IndexBuilder.Result built = index(src);
    assertEquals(3, built.layers().size());
    assertTrue(
        built.layers().get(0).checkpoints() > 50,
        "a 64 KiB span: many checkpoints in 8 MiB of layer 1");
    assertNotNull(built.layers().get(2).device(), "the uncompressed tar layer has its device");
    assertEquals(null, built.layers().get(2).device().zinfo(), "and no zinfo");

    LazyImage img = src.resolve();
    assertEquals(
        built.manifest().digest(), img.manifestDigest(), "the image is named by its index");
    assertEquals(3, img.blobs().size());
    Map<String, byte[]> got = readAll(img, src.blobs());
    assertEquals(expected.keySet(), got.keySet(), "whiteouts and the opaque directory applied");
    for (Map.Entry<String, byte[]> e : expected.entrySet()) {
      assertArrayEquals(e.getValue(), got.get(e.getKey()), e.getKey());
    }
    for (int i = 0; i < img.blobs().size(); i++) {
      Descriptor dev = img.blobs().get(i);
      ChunkDigestTable t =
          ChunkDigestTable.decode(
              src.blobs().readVerified(img.chunkTable(i), 1 << 20, "table"), dev);
      for (int e = 0; e < t.size(); e++) {
        assertTrue(
            t.verify(e, src.blobs().read(dev, t.offset(e), t.length(e)), 0, t.length(e)),
            "device " + i + " entry " + e);
      }
    }
    long[] stats = idx.spans().stats();
    assertTrue(
        stats[0] > 0,
        "spans were reused from the cache: " + stats[0] + " hits, " + stats[1] + " misses");
  }

  @Test
  void aTamperedLayerByteIsAnErrorNeverOtherBytes() throws Exception {
    IndexedImages.Source src = open(indexes());
    index(src);
    LazyImage img = src.resolve();
    Descriptor layer1 = src.subject().manifest().layers().get(0);
    Path blob = layout.resolve("blobs/sha256").resolve(layer1.digest().hex());
    try (RandomAccessFile f = new RandomAccessFile(blob.toFile(), "rw")) {
      long at = f.length() / 2;
      f.seek(at);
      int b = f.read();
      f.seek(at);
      f.write(b ^ 0x20);
    }
    IndexedImages.Source fresh = open(indexes());
    Descriptor dev = img.blobs().get(0);
    IOException e =
        assertThrows(
            IOException.class,
            () -> {
              for (long off = 0; off < dev.size(); off += 1 << 20) {
                fresh.blobs().read(dev, off, (int) Math.min(1 << 20, dev.size() - off));
              }
            });
    assertTrue(
        e.getMessage().contains("sha256") || e.getMessage().contains("span"), e.getMessage());
  }

  @Test
  void indexingLocallyKeepsTheIndexInTheStoreWhereTheNextSourceFindsIt() throws Exception {
    IndexedImages idx = indexes();
    LazyImage img = open(idx).resolve(true, null);
    assertEquals(3, img.blobs().size());
    assertTrue(idx.store().find(open(idx).subject().descriptor().digest()).isPresent());
    LazyImage again = open(indexes()).resolve();
    assertEquals(
        img.manifestDigest(), again.manifestDigest(), "found in the store, the same index");
    assertEquals(expected.keySet(), readAll(again, open(indexes()).blobs()).keySet());
  }

  @Test
  void theIndexIsAFunctionOfTheImage() throws Exception {
    IndexBuilder.Result a = index(open(indexes()));
    IndexBuilder.Result b = index(open(indexes()));
    assertEquals(
        a.manifest().digest(), b.manifest().digest(), "same image and options, same index bytes");
    List<String> types = new ArrayList<>();
    for (Descriptor d :
        IndexArtifact.parse(
                a.manifestBytes(),
                open(indexes()).subject().descriptor(),
                open(indexes()).subject().manifest().layers(),
                "index")
            .manifest()
            .layers()) {
      types.add(d.mediaType());
    }
    assertEquals(
        List.of(
            MediaTypes.EROFS_BOOTSTRAP,
            IndexArtifact.ZINFO,
            IndexArtifact.SPANS,
            IndexArtifact.DEVICE_MAP,
            MediaTypes.CHUNK_DIGESTS,
            IndexArtifact.ZINFO,
            IndexArtifact.SPANS,
            IndexArtifact.DEVICE_MAP,
            MediaTypes.CHUNK_DIGESTS,
            IndexArtifact.DEVICE_MAP,
            MediaTypes.CHUNK_DIGESTS),
        types);
    assertFalse(a.indexBytes() <= 0);
  }
}

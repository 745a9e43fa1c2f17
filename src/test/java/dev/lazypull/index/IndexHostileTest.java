package dev.lazypull.index;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.gzindex.SpanTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.oci.OciLayoutBlobSource;
import dev.lazypull.oci.OciLayoutWriter;
import dev.lazypull.pack.OciLayoutOutput;
import dev.lazypull.pack.Progress;
import dev.lazypull.testing.TarBytes;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hostile and unusual input to indexing and serving: gzip layers of concatenated members (as
 * eStargz writes them), truncated or mislabelled layers, zstd layers, and indexes whose parts lie —
 * a checkpoint moved (with every digest made to agree), device maps that do not tile, artifacts of
 * another image or in another order. Each is a clear error; no lie yields other bytes than the
 * layer's.
 */
class IndexHostileTest {
  @TempDir Path tmp;

  private static byte[] gzip(byte[] data) throws IOException {
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    try (GZIPOutputStream gz = new GZIPOutputStream(bo)) {
      gz.write(data);
    }
    return bo.toByteArray();
  }

  /** A tar of files f0..f{n-1} of random (half compressible) content; returns the tar. */
  private static byte[] tar(int n, Random r, Map<String, byte[]> files) {
    TarBytes t = new TarBytes();
    for (int i = 0; i < n; i++) {
      byte[] data = new byte[r.nextInt(300_000) + 1];
      if (i % 2 == 0) {
        r.nextBytes(data);
      } else {
        Arrays.fill(data, (byte) ('a' + i % 26));
      }
      files.put("f" + i, data);
      t.entry(("f" + i).getBytes(), '0', data, new byte[0]);
    }
    return t.end();
  }

  private record Built(
      Path layout, Descriptor subject, Descriptor layer, IndexBuilder.Result result) {}

  private Built build(byte[] stored, String mediaType, long span) throws IOException {
    Path layout = tmp.resolve("layout-" + System.nanoTime());
    OciLayoutWriter w = new OciLayoutWriter(layout);
    Descriptor layer = w.putBlob(stored, mediaType);
    Descriptor subject = new Descriptor(MediaTypes.OCI_MANIFEST, Digest.of(new byte[] {1}), 1);
    try (OciLayoutOutput out = new OciLayoutOutput(layout, "idx")) {
      IndexBuilder.Result r =
          IndexBuilder.build(
              "test",
              subject,
              List.of(layer),
              l -> new ByteArrayInputStream(stored),
              IndexBuilder.Options.defaults().withSpanSize(64 << 10),
              out,
              Progress.silent());
      return new Built(layout, subject, layer, r);
    }
  }

  private static byte[] readDevice(BlobSource blobs, Descriptor dev) throws IOException {
    return blobs.read(dev, 0, (int) dev.size());
  }

  /** The expected device: each file's bytes at the next 4 KiB boundary. */
  private static byte[] device(Map<String, byte[]> files, int n) {
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    for (int i = 0; i < n; i++) {
      byte[] d = files.get("f" + i);
      bo.writeBytes(d);
      bo.writeBytes(new byte[(int) (DeviceMap.roundUp(d.length) - d.length)]);
    }
    return bo.toByteArray();
  }

  @Test
  void concatenatedMembersAsEstargzWritesThemIndexAndServe() throws Exception {
    Map<String, byte[]> files = new HashMap<>();
    byte[] tar = tar(30, new Random(1), files);
    // three members split at arbitrary bytes, each a complete gzip stream
    int a = tar.length / 3 + 77;
    int b = 2 * tar.length / 3 + 5;
    ByteArrayOutputStream cat = new ByteArrayOutputStream();
    cat.writeBytes(gzip(Arrays.copyOfRange(tar, 0, a)));
    cat.writeBytes(gzip(Arrays.copyOfRange(tar, a, b)));
    cat.writeBytes(gzip(Arrays.copyOfRange(tar, b, tar.length)));
    Built built = build(cat.toByteArray(), MediaTypes.OCI_LAYER_TAR_GZIP, 64 << 10);
    IndexArtifact.Device d = built.result().layers().get(0).device();
    IndexedBlobSource blobs =
        new IndexedBlobSource(
            new OciLayoutBlobSource(built.layout()), null, new SpanCache(1 << 20));
    assertArrayEquals(
        device(files, 30), readDevice(blobs, d.descriptor()), "the device across member ends");
  }

  @Test
  void truncatedMislabelledAndZstdLayersAreClearErrors() throws Exception {
    Map<String, byte[]> files = new HashMap<>();
    byte[] gz = gzip(tar(10, new Random(2), files));
    IOException cut =
        assertThrows(
            IOException.class,
            () ->
                build(Arrays.copyOf(gz, gz.length - 100), MediaTypes.OCI_LAYER_TAR_GZIP, 64 << 10));
    assertTrue(
        cut.getMessage().contains("truncated") || cut.getMessage().contains("ends"),
        cut.getMessage());
    IOException notGzip =
        assertThrows(
            IOException.class,
            () -> build(tar(3, new Random(3), files), MediaTypes.OCI_LAYER_TAR_GZIP, 64 << 10));
    assertTrue(notGzip.getMessage().contains("not a gzip stream"), notGzip.getMessage());
    Descriptor zstd = new Descriptor(MediaTypes.OCI_LAYER_TAR_ZSTD, Digest.of(gz), gz.length);
    InvalidImageException z =
        assertThrows(
            InvalidImageException.class,
            () ->
                IndexBuilder.build(
                    "img",
                    new Descriptor(MediaTypes.OCI_MANIFEST, Digest.of(gz), 1),
                    List.of(zstd),
                    l -> null,
                    IndexBuilder.Options.defaults(),
                    null,
                    Progress.silent()));
    assertTrue(
        z.getMessage().contains("zstd") && z.getMessage().contains("not support"), z.getMessage());
    // a layer whose bytes are not what its descriptor says: nothing published
    Path layout = tmp.resolve("wrong");
    Descriptor lying =
        new Descriptor(MediaTypes.OCI_LAYER_TAR_GZIP, Digest.of(new byte[] {9}), gz.length);
    try (OciLayoutOutput out = new OciLayoutOutput(layout, "idx")) {
      IOException e =
          assertThrows(
              IOException.class,
              () ->
                  IndexBuilder.build(
                      "img",
                      lying,
                      List.of(lying),
                      l -> new ByteArrayInputStream(gz),
                      IndexBuilder.Options.defaults(),
                      out,
                      Progress.silent()));
      assertTrue(e.getMessage().contains("nothing was published"), e.getMessage());
    }
    String index = Files.readString(layout.resolve("index.json"));
    assertTrue(!index.contains("\"idx\""), "nothing tagged: " + index);
  }

  @Test
  void aMovedCheckpointWithAgreeingDigestsIsAnErrorNotOtherBytes() throws Exception {
    Map<String, byte[]> files = new HashMap<>();
    byte[] gz = gzip(tar(40, new Random(4), files));
    Built built = build(gz, MediaTypes.OCI_LAYER_TAR_GZIP, 64 << 10);
    IndexArtifact.Device d = built.result().layers().get(0).device();
    OciLayoutBlobSource src = new OciLayoutBlobSource(built.layout());
    byte[] zinfo = src.read(d.zinfo(), 0, (int) d.zinfo().size());
    SpanTable spans = SpanTable.decode(src.read(d.spans(), 0, (int) d.spans().size()));
    DeviceMap map = DeviceMap.decode(src.read(d.map(), 0, (int) d.map().size()));
    assertTrue(Integer.reverseBytes(ByteBuffer.wrap(zinfo).getInt(0)) > 4, "several checkpoints");
    // checkpoint 2's uncompressed offset + 1: every digest recomputed so the index is
    // self-consistent
    ByteBuffer z = ByteBuffer.wrap(zinfo).order(ByteOrder.LITTLE_ENDIAN);
    int at = 12 + 2 * (8 + 8 + 1 + 32768) + 8;
    z.putLong(at, z.getLong(at) + 1);
    OciLayoutWriter w = new OciLayoutWriter(built.layout());
    Descriptor badZinfo = w.putBlob(zinfo, IndexArtifact.ZINFO);
    byte[] badSpans =
        new SpanTable(
                spans.spanSize(),
                spans.compressedSize(),
                spans.uncompressedSize(),
                spans.layerSha256(),
                HexFormat.of().parseHex(badZinfo.digest().hex()),
                spans.spanDigests())
            .encode();
    Descriptor badSpansDesc = w.putBlob(badSpans, IndexArtifact.SPANS);
    long[] tars = new long[map.extents()];
    long[] lens = new long[map.extents()];
    for (int i = 0; i < tars.length; i++) {
      tars[i] = map.tarOffset(i);
      lens[i] = map.length(i);
    }
    DeviceMap bad =
        new DeviceMap(
            DeviceMap.GZIP,
            map.deviceSize(),
            HexFormat.of().parseHex(d.device().hex()),
            HexFormat.of().parseHex(map.layerDigest().hex()),
            map.layerSize(),
            map.tarSize(),
            HexFormat.of().parseHex(badZinfo.digest().hex()),
            badZinfo.size(),
            HexFormat.of().parseHex(badSpansDesc.digest().hex()),
            badSpans.length,
            tars,
            lens);
    Descriptor badMap = w.putBlob(bad.encode(), IndexArtifact.DEVICE_MAP);
    IndexArtifact.Device lie =
        new IndexArtifact.Device(
            d.layer(), d.device(), d.deviceSize(), badZinfo, badSpansDesc, badMap, d.table());
    IndexedBlobSource blobs = new IndexedBlobSource(src, null, new SpanCache(1 << 20));
    IOException e = assertThrows(IOException.class, () -> readDevice(blobs, lie.descriptor()));
    assertTrue(e.getMessage().contains("does not match its index"), e.getMessage());
    // the honest index still serves
    assertArrayEquals(
        device(files, 40),
        readDevice(new IndexedBlobSource(src, null, new SpanCache(1 << 20)), d.descriptor()));
  }

  @Test
  void deviceMapsThatDoNotTileOrLieAboutTheirDeviceAreRefused() throws Exception {
    Map<String, byte[]> files = new HashMap<>();
    Built built =
        build(gzip(tar(5, new Random(5), files)), MediaTypes.OCI_LAYER_TAR_GZIP, 64 << 10);
    IndexArtifact.Device d = built.result().layers().get(0).device();
    OciLayoutBlobSource src = new OciLayoutBlobSource(built.layout());
    byte[] good = src.read(d.map(), 0, (int) d.map().size());
    DeviceMap.decode(good);
    byte[] shortened = Arrays.copyOf(good, good.length - 16);
    assertThrows(InvalidIndexException.class, () -> DeviceMap.decode(shortened));
    byte[] overlap = good.clone();
    ByteBuffer o = ByteBuffer.wrap(overlap).order(ByteOrder.LITTLE_ENDIAN);
    o.putLong(
        DeviceMap.HEADER_SIZE + 16,
        o.getLong(DeviceMap.HEADER_SIZE)); // extent 1 at extent 0's offset
    assertTrue(
        assertThrows(InvalidIndexException.class, () -> DeviceMap.decode(overlap))
            .getMessage()
            .contains("extent 1"));
    byte[] bigger = good.clone();
    ByteBuffer g = ByteBuffer.wrap(bigger).order(ByteOrder.LITTLE_ENDIAN);
    g.putLong(16, g.getLong(16) + 4096);
    assertThrows(InvalidIndexException.class, () -> DeviceMap.decode(bigger));
    // a device descriptor whose map describes another device
    Descriptor other =
        new Descriptor(
            IndexArtifact.DEVICE,
            Digest.of(new byte[] {7}),
            d.deviceSize(),
            d.descriptor().annotations(),
            null);
    IndexedBlobSource blobs = new IndexedBlobSource(src, null, new SpanCache(1 << 20));
    assertTrue(
        assertThrows(IOException.class, () -> blobs.read(other, 0, 4096))
            .getMessage()
            .contains("describes device"));
  }

  @Test
  void artifactsOfAnotherImageOrOutOfShapeAreRefused() throws Exception {
    Map<String, byte[]> files = new HashMap<>();
    Built built =
        build(gzip(tar(3, new Random(6), files)), MediaTypes.OCI_LAYER_TAR_GZIP, 64 << 10);
    byte[] m = built.result().manifestBytes();
    List<Descriptor> layers = List.of(built.layer());
    IndexArtifact.parse(m, built.subject(), layers, "index");
    Descriptor otherImage = new Descriptor(MediaTypes.OCI_MANIFEST, Digest.of(new byte[] {2}), 1);
    assertTrue(
        assertThrows(
                InvalidIndexException.class,
                () -> IndexArtifact.parse(m, otherImage, layers, "index"))
            .getMessage()
            .contains("not the image"));
    assertThrows(
        InvalidIndexException.class,
        () ->
            IndexArtifact.parse(
                m,
                built.subject(),
                List.of(
                    new Descriptor(MediaTypes.OCI_LAYER_TAR_GZIP, Digest.of(new byte[] {3}), 5)),
                "index"));
    String text = new String(m, StandardCharsets.UTF_8);
    byte[] noSpans = text.replace(IndexArtifact.SPANS, "application/x-other").getBytes();
    assertThrows(
        InvalidIndexException.class,
        () -> IndexArtifact.parse(noSpans, built.subject(), layers, "i"));
    byte[] notOurs = text.replace(IndexArtifact.ARTIFACT_TYPE, "application/vnd.other").getBytes();
    assertThrows(
        InvalidIndexException.class,
        () -> IndexArtifact.parse(notOurs, built.subject(), layers, "i"));
    byte[] huge =
        text.replaceFirst(
                "\"size\":(\\d+),\"annotations\":\\{\"dev.lazypull.layer\"",
                "\"size\":99999999999999,\"annotations\":{\"dev.lazypull.layer\"")
            .getBytes();
    assertTrue(
        assertThrows(
                InvalidIndexException.class,
                () -> IndexArtifact.parse(huge, built.subject(), layers, "i"))
            .getMessage()
            .contains("limit"));
    assertEquals(1, IndexArtifact.parse(m, built.subject(), layers, "i").devices().size());
  }
}

package dev.lazypull.image;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Builds the manifest and minimal config of a lazypull image (docs/format.md). */
public final class LazyManifests {
  /** Annotation: the EROFS chunk size the image was built with, when known. */
  public static final String ANNOTATION_CHUNK_SIZE = "dev.lazypull.chunk-size";

  /** Annotation on a data blob layer: the digest of its chunk digest table layer. */
  public static final String ANNOTATION_CHUNK_DIGESTS = "dev.lazypull.chunk-digests";

  /** Annotation on a chunk digest table layer: the digest of the data blob it describes. */
  public static final String ANNOTATION_CHUNK_DIGESTS_BLOB = "dev.lazypull.chunk-digests.blob";

  /**
   * Annotation on a compressed data blob layer ({@link MediaTypes#EROFS_BLOB_ZSTD}): the size in
   * bytes of the EROFS device it holds (its uncompressed size), decimal.
   */
  public static final String ANNOTATION_UNCOMPRESSED_SIZE = "dev.lazypull.uncompressed-size";

  /** Annotation: the manifest digest of the image a converted image was made from. */
  public static final String ANNOTATION_SOURCE = "dev.lazypull.source.manifest";

  private LazyManifests() {}

  /**
   * A minimal valid OCI image config whose layers are all stored uncompressed, so diff_ids equal
   * the layer digests.
   */
  public static byte[] minimalConfig(List<Descriptor> layers) {
    List<String> diffIds = new ArrayList<>();
    for (Descriptor d : layers) {
      diffIds.add(d.digest().toString());
    }
    return minimalConfigWithDiffIds(diffIds);
  }

  /**
   * A minimal valid OCI image config with these diff_ids (the sha256 of each layer's uncompressed
   * content: for a compressed data blob, of the device it decompresses to).
   */
  public static byte[] minimalConfigWithDiffIds(List<String> diffIds) {
    Map<String, Object> rootfs = new LinkedHashMap<>();
    rootfs.put("type", "layers");
    rootfs.put("diff_ids", diffIds);
    Map<String, Object> config = new LinkedHashMap<>();
    config.put("architecture", "amd64");
    config.put("os", "linux");
    config.put("rootfs", rootfs);
    return Json.write(config);
  }

  /**
   * The manifest of an image built with chunk digest tables: bootstrap, data blobs (each annotated
   * with its table's digest, and a compressed one with its uncompressed size), then the tables
   * (each annotated with its blob's digest), in device order. {@code blobs} carry their media type
   * and the uncompressed-size annotation.
   */
  public static Manifest manifest(
      Descriptor config,
      Descriptor bootstrap,
      List<Descriptor> blobs,
      List<Descriptor> tables,
      Map<String, String> annotations) {
    if (tables.size() != blobs.size()) {
      throw new IllegalArgumentException(
          tables.size() + " digest tables for " + blobs.size() + " blobs");
    }
    List<Descriptor> layers = new ArrayList<>();
    layers.add(new Descriptor(MediaTypes.EROFS_BOOTSTRAP, bootstrap.digest(), bootstrap.size()));
    for (int i = 0; i < blobs.size(); i++) {
      Descriptor b = blobs.get(i);
      layers.add(blobLayer(b, tables.get(i).digest().toString()));
    }
    for (int i = 0; i < tables.size(); i++) {
      Descriptor t = tables.get(i);
      layers.add(
          new Descriptor(
              MediaTypes.CHUNK_DIGESTS,
              t.digest(),
              t.size(),
              Map.of(ANNOTATION_CHUNK_DIGESTS_BLOB, blobs.get(i).digest().toString()),
              null));
    }
    return new Manifest(2, MediaTypes.OCI_MANIFEST, null, config, layers, annotations);
  }

  public static Manifest manifest(
      Descriptor config,
      Descriptor bootstrap,
      List<Descriptor> blobs,
      Map<String, String> annotations) {
    List<Descriptor> layers = new ArrayList<>();
    layers.add(new Descriptor(MediaTypes.EROFS_BOOTSTRAP, bootstrap.digest(), bootstrap.size()));
    for (Descriptor b : blobs) {
      layers.add(blobLayer(b, null));
    }
    return new Manifest(2, MediaTypes.OCI_MANIFEST, null, config, layers, annotations);
  }

  /**
   * A data blob's layer: raw unless {@code b} is {@link MediaTypes#EROFS_BLOB_ZSTD} (then with its
   * size).
   */
  private static Descriptor blobLayer(Descriptor b, String table) {
    Map<String, String> ann = new TreeMap<>();
    if (table != null) {
      ann.put(ANNOTATION_CHUNK_DIGESTS, table);
    }
    if (MediaTypes.EROFS_BLOB_ZSTD.equals(b.mediaType())) {
      String size = b.annotation(ANNOTATION_UNCOMPRESSED_SIZE);
      if (size == null) {
        throw new IllegalArgumentException(
            "compressed blob " + b.digest() + " without its uncompressed size");
      }
      ann.put(ANNOTATION_UNCOMPRESSED_SIZE, size);
      return new Descriptor(MediaTypes.EROFS_BLOB_ZSTD, b.digest(), b.size(), ann, null);
    }
    return new Descriptor(MediaTypes.EROFS_BLOB, b.digest(), b.size(), ann, null);
  }
}

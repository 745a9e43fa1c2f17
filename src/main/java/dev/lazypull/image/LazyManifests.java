package dev.lazypull.image;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Builds the manifest and minimal config of a lazypull image (docs/format.md). */
public final class LazyManifests {
  /** Annotation: the EROFS chunk size the image was built with, when known. */
  public static final String ANNOTATION_CHUNK_SIZE = "dev.lazypull.chunk-size";
  /** Annotation on a data blob layer: the digest of its chunk digest table layer. */
  public static final String ANNOTATION_CHUNK_DIGESTS = "dev.lazypull.chunk-digests";
  /** Annotation on a chunk digest table layer: the digest of the data blob it describes. */
  public static final String ANNOTATION_CHUNK_DIGESTS_BLOB = "dev.lazypull.chunk-digests.blob";
  /** Annotation: the manifest digest of the image a converted image was made from. */
  public static final String ANNOTATION_SOURCE = "dev.lazypull.source.manifest";

  private LazyManifests() {}

  /**
   * A minimal valid OCI image config for a packed directory: every layer is uncompressed, so diff_ids equal the
   * layer digests.
   */
  public static byte[] minimalConfig(List<Descriptor> layers) {
    Map<String, Object> rootfs = new LinkedHashMap<>();
    rootfs.put("type", "layers");
    List<String> diffIds = new ArrayList<>();
    for (Descriptor d : layers) {
      diffIds.add(d.digest().toString());
    }
    rootfs.put("diff_ids", diffIds);
    Map<String, Object> config = new LinkedHashMap<>();
    config.put("architecture", "amd64");
    config.put("os", "linux");
    config.put("rootfs", rootfs);
    return Json.write(config);
  }

  /**
   * The manifest of an image built with chunk digest tables: bootstrap, data blobs (each annotated with its
   * table's digest), then the tables (each annotated with its blob's digest), in device order.
   */
  public static Manifest manifest(Descriptor config, Descriptor bootstrap, List<Descriptor> blobs,
      List<Descriptor> tables, Map<String, String> annotations) {
    if (tables.size() != blobs.size()) {
      throw new IllegalArgumentException(tables.size() + " digest tables for " + blobs.size() + " blobs");
    }
    List<Descriptor> layers = new ArrayList<>();
    layers.add(new Descriptor(MediaTypes.EROFS_BOOTSTRAP, bootstrap.digest(), bootstrap.size()));
    for (int i = 0; i < blobs.size(); i++) {
      Descriptor b = blobs.get(i);
      layers.add(new Descriptor(MediaTypes.EROFS_BLOB, b.digest(), b.size(),
          Map.of(ANNOTATION_CHUNK_DIGESTS, tables.get(i).digest().toString()), null));
    }
    for (int i = 0; i < tables.size(); i++) {
      Descriptor t = tables.get(i);
      layers.add(new Descriptor(MediaTypes.CHUNK_DIGESTS, t.digest(), t.size(),
          Map.of(ANNOTATION_CHUNK_DIGESTS_BLOB, blobs.get(i).digest().toString()), null));
    }
    return new Manifest(2, MediaTypes.OCI_MANIFEST, null, config, layers, annotations);
  }

  public static Manifest manifest(Descriptor config, Descriptor bootstrap, List<Descriptor> blobs,
      Map<String, String> annotations) {
    List<Descriptor> layers = new ArrayList<>();
    layers.add(new Descriptor(MediaTypes.EROFS_BOOTSTRAP, bootstrap.digest(), bootstrap.size()));
    for (Descriptor b : blobs) {
      layers.add(new Descriptor(MediaTypes.EROFS_BLOB, b.digest(), b.size()));
    }
    return new Manifest(2, MediaTypes.OCI_MANIFEST, null, config, layers, annotations);
  }
}

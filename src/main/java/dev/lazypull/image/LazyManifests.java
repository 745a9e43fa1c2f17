package dev.lazypull.image;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Builds the manifest and minimal config of a lazypull image (docs/format.md). */
public final class LazyManifests {
  /** Annotation: the EROFS chunk size the image was built with, when known. */
  public static final String ANNOTATION_CHUNK_SIZE = "dev.lazypull.chunk-size";

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

package dev.lazypull.image;

/** Media types lazypull reads and writes (see docs/format.md). */
public final class MediaTypes {
  public static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
  public static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";
  public static final String OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
  public static final String OCI_EMPTY = "application/vnd.oci.empty.v1+json";
  public static final String OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";
  public static final String OCI_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
  public static final String OCI_LAYER_TAR_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
  public static final String DOCKER_MANIFEST =
      "application/vnd.docker.distribution.manifest.v2+json";
  public static final String DOCKER_MANIFEST_LIST =
      "application/vnd.docker.distribution.manifest.list.v2+json";
  public static final String DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
  public static final String DOCKER_LAYER_TAR_GZIP =
      "application/vnd.docker.image.rootfs.diff.tar.gzip";

  /** Layer 0 of a lazypull image: the raw EROFS bootstrap (metadata), stored uncompressed. */
  public static final String EROFS_BOOTSTRAP = "application/vnd.lazypull.erofs.bootstrap.v1";

  /** Layers 1..n: raw, 4 KiB-aligned chunk data; layer k is EROFS device id k. */
  public static final String EROFS_BLOB = "application/vnd.lazypull.erofs.blob.v1";

  /**
   * Layers 1..n of a compressed image: the chunks of device k as independent zstd frames, in device
   * order (so the blob as a whole is also one valid zstd stream of the device); its chunk digest
   * table (version 2) says where each frame lies, and the annotation {@code
   * dev.lazypull.uncompressed-size} gives the device size.
   */
  public static final String EROFS_BLOB_ZSTD = "application/vnd.lazypull.erofs.blob.v1+zstd";

  /**
   * Layer 0 of a disk image ({@link DiskImage}): a raw disk (any block device's bytes: ext4, a
   * partition table, anything) stored as is, with a version 1 chunk digest table.
   */
  public static final String DISK = "application/vnd.lazypull.disk.v1";

  /**
   * Layer 0 of a disk image: the disk's chunks as independent zstd frames, with a version 2 chunk
   * digest table.
   */
  public static final String DISK_ZSTD = "application/vnd.lazypull.disk.v1+zstd";

  /**
   * A snapshot's diff: the dirty blocks of an overlay packed in block order, as zstd-compressed
   * chunks with a version 2 chunk digest table; which block each one is comes from the diff's
   * {@link #DISK_DIFF_MAP}.
   */
  public static final String DISK_DIFF_ZSTD = "application/vnd.lazypull.disk.diff.v1+zstd";

  /**
   * A snapshot's block map: the blocks its diff holds and the blocks it zeroes (roaring bitmaps).
   */
  public static final String DISK_DIFF_MAP = "application/vnd.lazypull.disk.diff-map.v1";

  /**
   * Trailing layers after the data blobs: one chunk digest table per data blob (sha256 of every
   * stored chunk, see {@link ChunkDigestTable}), for integrity checks of ranges fetched lazily.
   */
  public static final String CHUNK_DIGESTS = "application/vnd.lazypull.chunk-digests.v1";

  /**
   * The Accept header for manifest requests: distribution returns 404 for OCI types it was not
   * offered.
   */
  public static final String MANIFEST_ACCEPT =
      String.join(", ", OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST);

  private MediaTypes() {}

  /**
   * A data blob layer: raw ({@link #EROFS_BLOB}) or of compressed chunks ({@link
   * #EROFS_BLOB_ZSTD}).
   */
  public static boolean isDataBlob(String mediaType) {
    return EROFS_BLOB.equals(mediaType) || EROFS_BLOB_ZSTD.equals(mediaType);
  }

  /**
   * A layer of compressed chunks with a version 2 chunk digest table and an uncompressed-size
   * annotation.
   */
  public static boolean isCompressedChunks(String mediaType) {
    return EROFS_BLOB_ZSTD.equals(mediaType)
        || DISK_ZSTD.equals(mediaType)
        || DISK_DIFF_ZSTD.equals(mediaType);
  }

  /** Layer 0 of a disk image. */
  public static boolean isDisk(String mediaType) {
    return DISK.equals(mediaType) || DISK_ZSTD.equals(mediaType);
  }

  public static boolean isIndex(String mediaType) {
    return OCI_INDEX.equals(mediaType) || DOCKER_MANIFEST_LIST.equals(mediaType);
  }

  public static boolean isManifest(String mediaType) {
    return OCI_MANIFEST.equals(mediaType) || DOCKER_MANIFEST.equals(mediaType);
  }
}

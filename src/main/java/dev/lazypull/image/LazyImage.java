package dev.lazypull.image;

import java.util.ArrayList;
import java.util.List;

/**
 * A resolved lazypull image: an OCI manifest whose layer 0 is the raw EROFS bootstrap, whose layers
 * 1..n are the data blobs (layer k serving EROFS device id k), optionally followed by one chunk
 * digest table per data blob (docs/format.md).
 *
 * <p>A data blob is raw ({@link MediaTypes#EROFS_BLOB}: its bytes are the device) or made of
 * compressed chunks ({@link MediaTypes#EROFS_BLOB_ZSTD}: its descriptor's size is the stored size,
 * the device size is the {@link LazyManifests#ANNOTATION_UNCOMPRESSED_SIZE} annotation, and its
 * chunk digest table, required, says where each chunk's frame lies). {@link #deviceSize} is what
 * cache files, device tables and flattened layouts are sized by; the descriptor's size is what is
 * fetched.
 *
 * @param reference what the user asked for, as given (for messages and the catalog)
 * @param manifestDigest sha256 of the exact manifest bytes
 * @param blobs the data blobs in device order
 * @param chunkTables the chunk digest table layers, in the same order as {@code blobs}; empty when
 *     the image has none (images wrapped by {@code import}), otherwise exactly one per blob
 */
public record LazyImage(
    String reference,
    Digest manifestDigest,
    Manifest manifest,
    Descriptor bootstrap,
    List<Descriptor> blobs,
    List<Descriptor> chunkTables) {

  /**
   * Largest blob we serve: EROFS block addresses are 32-bit, so a device tops out at 16 TiB with 4
   * KiB blocks.
   */
  public static final long MAX_BLOB_SIZE = 1L << 44;

  /**
   * Largest chunk digest table: 48 bytes per chunk, so 16 TiB of 4 KiB chunks would not fit; 1 GiB
   * bounds it.
   */
  public static final long MAX_TABLE_SIZE = 1L << 30;

  public LazyImage {
    blobs = List.copyOf(blobs);
    chunkTables = List.copyOf(chunkTables);
  }

  /** Checks that {@code manifest} has the lazypull layer layout and returns it as an image. */
  public static LazyImage of(String reference, Digest manifestDigest, Manifest manifest)
      throws InvalidImageException {
    List<Descriptor> layers = manifest.layers();
    if (layers.isEmpty()) {
      throw new InvalidImageException(
          reference + ": manifest " + manifestDigest + " has no layers");
    }
    Descriptor bootstrap = layers.get(0);
    if (MediaTypes.isDisk(bootstrap.mediaType())) {
      throw new InvalidImageException(
          reference
              + ": manifest "
              + manifestDigest
              + " is a disk image (layer 0 is "
              + bootstrap.mediaType()
              + "), not a filesystem image: serve it with `lazypull nbd`");
    }
    if (!MediaTypes.EROFS_BOOTSTRAP.equals(bootstrap.mediaType())) {
      throw new InvalidImageException(
          reference
              + ": not a lazypull image: layer 0 is "
              + bootstrap.mediaType()
              + ", expected "
              + MediaTypes.EROFS_BOOTSTRAP
              + " (convert ordinary images with `lazypull convert`)");
    }
    List<Descriptor> blobs = new ArrayList<>();
    List<Descriptor> tables = new ArrayList<>();
    for (int i = 1; i < layers.size(); i++) {
      Descriptor d = layers.get(i);
      if (MediaTypes.isDataBlob(d.mediaType()) && tables.isEmpty()) {
        blobs.add(d);
      } else if (MediaTypes.CHUNK_DIGESTS.equals(d.mediaType())) {
        tables.add(d);
      } else {
        throw new InvalidImageException(
            reference
                + ": layer "
                + i
                + " ("
                + d.digest()
                + ") is "
                + d.mediaType()
                + ", expected "
                + (tables.isEmpty()
                    ? MediaTypes.EROFS_BLOB + ", " + MediaTypes.EROFS_BLOB_ZSTD + " or "
                    : "")
                + MediaTypes.CHUNK_DIGESTS);
      }
    }
    for (int i = 0; i < layers.size(); i++) {
      Descriptor d = layers.get(i);
      long max = MediaTypes.CHUNK_DIGESTS.equals(d.mediaType()) ? MAX_TABLE_SIZE : MAX_BLOB_SIZE;
      if (d.size() <= 0 || d.size() > max) {
        throw new InvalidImageException(
            reference
                + ": layer "
                + i
                + " ("
                + d.digest()
                + ") has size "
                + d.size()
                + ", outside (0, "
                + max
                + "]");
      }
    }
    boolean compressed = false;
    for (int i = 0; i < blobs.size(); i++) {
      Descriptor d = blobs.get(i);
      if (isCompressed(d)) {
        compressed = true;
        checkDeviceSize(reference, i + 1, d);
      }
    }
    if (compressed && tables.isEmpty()) {
      throw new InvalidImageException(
          reference + ": compressed data blobs without chunk digest tables");
    }
    if (!tables.isEmpty()) {
      checkTables(reference, blobs, tables);
    }
    return new LazyImage(reference, manifestDigest, manifest, bootstrap, blobs, tables);
  }

  /** A compressed blob's device size: a whole number of blocks, at most {@link #MAX_BLOB_SIZE}. */
  static void checkDeviceSize(String reference, int layer, Descriptor d)
      throws InvalidImageException {
    String v = d.annotation(LazyManifests.ANNOTATION_UNCOMPRESSED_SIZE);
    long size;
    try {
      size = v == null ? -1 : Long.parseLong(v);
    } catch (NumberFormatException e) {
      size = -1;
    }
    if (size <= 0 || size > MAX_BLOB_SIZE || size % ChunkDigestTable.BLOCK_SIZE != 0) {
      throw new InvalidImageException(
          reference
              + ": layer "
              + layer
              + " ("
              + d.digest()
              + ") is "
              + d.mediaType()
              + " with "
              + LazyManifests.ANNOTATION_UNCOMPRESSED_SIZE
              + " '"
              + v
              + "': expected a positive multiple of "
              + ChunkDigestTable.BLOCK_SIZE
              + " up to "
              + MAX_BLOB_SIZE);
    }
  }

  /**
   * True for a blob of compressed chunks ({@link MediaTypes#EROFS_BLOB_ZSTD}, and a disk image's
   * {@link MediaTypes#DISK_ZSTD} and {@link MediaTypes#DISK_DIFF_ZSTD} layers).
   */
  public static boolean isCompressed(Descriptor blob) {
    return MediaTypes.isCompressedChunks(blob.mediaType());
  }

  /**
   * The size of the EROFS device a data blob holds: its descriptor's size for a raw blob, its
   * {@link LazyManifests#ANNOTATION_UNCOMPRESSED_SIZE} annotation for a compressed one (checked by
   * {@link #of}; -1 for a descriptor that did not come through it and lacks a valid annotation).
   */
  public static long deviceSize(Descriptor blob) {
    if (!isCompressed(blob)) {
      return blob.size();
    }
    try {
      return Long.parseLong(blob.annotation(LazyManifests.ANNOTATION_UNCOMPRESSED_SIZE));
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  /**
   * The device size of data blob {@code index} (0-based: device id index + 1); see {@link
   * #deviceSize(Descriptor)}.
   */
  public long deviceSize(int index) {
    return deviceSize(blobs.get(index));
  }

  /**
   * The device sizes of all data blobs in device order: what {@code erofs.FlatLayout} and cache
   * files use.
   */
  public List<Long> deviceSizes() {
    List<Long> out = new ArrayList<>();
    for (Descriptor b : blobs) {
      out.add(deviceSize(b));
    }
    return out;
  }

  /** True when any data blob is compressed. */
  public boolean hasCompressedBlobs() {
    return blobs.stream().anyMatch(LazyImage::isCompressed);
  }

  /** One table per blob, in blob order, each naming its blob. */
  private static void checkTables(String reference, List<Descriptor> blobs, List<Descriptor> tables)
      throws InvalidImageException {
    if (tables.size() != blobs.size()) {
      throw new InvalidImageException(
          reference
              + ": "
              + tables.size()
              + " chunk digest tables for "
              + blobs.size()
              + " data blobs");
    }
    for (int i = 0; i < blobs.size(); i++) {
      String named = tables.get(i).annotation(LazyManifests.ANNOTATION_CHUNK_DIGESTS_BLOB);
      if (!blobs.get(i).digest().toString().equals(named)) {
        throw new InvalidImageException(
            reference
                + ": chunk digest table "
                + (i + 1)
                + " names blob "
                + named
                + ", expected "
                + blobs.get(i).digest());
      }
    }
  }

  /**
   * The chunk digest table layer of data blob {@code index} (0-based), or null when the image has
   * none.
   */
  public Descriptor chunkTable(int index) {
    return chunkTables.isEmpty() ? null : chunkTables.get(index);
  }

  /**
   * Every blob the image reads at mount time: the bootstrap first, then the data blobs in device
   * order.
   */
  public List<Descriptor> allBlobs() {
    List<Descriptor> all = new ArrayList<>();
    all.add(bootstrap);
    all.addAll(blobs);
    return all;
  }
}

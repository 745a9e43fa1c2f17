package dev.lazypull.image;

import java.util.ArrayList;
import java.util.List;

/**
 * A resolved lazypull image: an OCI manifest whose layer 0 is the raw EROFS bootstrap, whose layers 1..n are
 * the data blobs (layer k serving EROFS device id k), optionally followed by one chunk digest table per data
 * blob (docs/format.md).
 *
 * @param reference what the user asked for, as given (for messages and the catalog)
 * @param manifestDigest sha256 of the exact manifest bytes
 * @param blobs the data blobs in device order
 * @param chunkTables the chunk digest table layers, in the same order as {@code blobs}; empty when the image
 *     has none (images wrapped by {@code import}), otherwise exactly one per blob
 */
public record LazyImage(String reference, Digest manifestDigest, Manifest manifest, Descriptor bootstrap,
    List<Descriptor> blobs, List<Descriptor> chunkTables) {

  /** Largest blob we serve: EROFS block addresses are 32-bit, so a device tops out at 16 TiB with 4 KiB blocks. */
  public static final long MAX_BLOB_SIZE = 1L << 44;
  /** Largest chunk digest table: 48 bytes per chunk, so 16 TiB of 4 KiB chunks would not fit; 1 GiB bounds it. */
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
      throw new InvalidImageException(reference + ": manifest " + manifestDigest + " has no layers");
    }
    Descriptor bootstrap = layers.get(0);
    if (!MediaTypes.EROFS_BOOTSTRAP.equals(bootstrap.mediaType())) {
      throw new InvalidImageException(reference + ": not a lazypull image: layer 0 is " + bootstrap.mediaType()
          + ", expected " + MediaTypes.EROFS_BOOTSTRAP + " (convert ordinary images with `lazypull convert`)");
    }
    List<Descriptor> blobs = new ArrayList<>();
    List<Descriptor> tables = new ArrayList<>();
    for (int i = 1; i < layers.size(); i++) {
      Descriptor d = layers.get(i);
      if (MediaTypes.EROFS_BLOB.equals(d.mediaType()) && tables.isEmpty()) {
        blobs.add(d);
      } else if (MediaTypes.CHUNK_DIGESTS.equals(d.mediaType())) {
        tables.add(d);
      } else {
        throw new InvalidImageException(reference + ": layer " + i + " (" + d.digest() + ") is " + d.mediaType()
            + ", expected " + (tables.isEmpty() ? MediaTypes.EROFS_BLOB + " or " : "") + MediaTypes.CHUNK_DIGESTS);
      }
    }
    for (int i = 0; i < layers.size(); i++) {
      Descriptor d = layers.get(i);
      long max = MediaTypes.CHUNK_DIGESTS.equals(d.mediaType()) ? MAX_TABLE_SIZE : MAX_BLOB_SIZE;
      if (d.size() <= 0 || d.size() > max) {
        throw new InvalidImageException(reference + ": layer " + i + " (" + d.digest() + ") has size " + d.size()
            + ", outside (0, " + max + "]");
      }
    }
    if (!tables.isEmpty()) {
      checkTables(reference, blobs, tables);
    }
    return new LazyImage(reference, manifestDigest, manifest, bootstrap, blobs, tables);
  }

  /** One table per blob, in blob order, each naming its blob. */
  private static void checkTables(String reference, List<Descriptor> blobs, List<Descriptor> tables)
      throws InvalidImageException {
    if (tables.size() != blobs.size()) {
      throw new InvalidImageException(reference + ": " + tables.size() + " chunk digest tables for "
          + blobs.size() + " data blobs");
    }
    for (int i = 0; i < blobs.size(); i++) {
      String named = tables.get(i).annotation(LazyManifests.ANNOTATION_CHUNK_DIGESTS_BLOB);
      if (!blobs.get(i).digest().toString().equals(named)) {
        throw new InvalidImageException(reference + ": chunk digest table " + (i + 1) + " names blob " + named
            + ", expected " + blobs.get(i).digest());
      }
    }
  }

  /** The chunk digest table layer of data blob {@code index} (0-based), or null when the image has none. */
  public Descriptor chunkTable(int index) {
    return chunkTables.isEmpty() ? null : chunkTables.get(index);
  }

  /** Every blob the image reads at mount time: the bootstrap first, then the data blobs in device order. */
  public List<Descriptor> allBlobs() {
    List<Descriptor> all = new ArrayList<>();
    all.add(bootstrap);
    all.addAll(blobs);
    return all;
  }
}

package dev.lazypull.fetch;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.LazyImage;

/**
 * A blob as a front end asks the fetch core for it: the blob, whether it is an image's metadata
 * (its bootstrap) or a data blob with its chunk digest table, and the origin whose fetch threads
 * read it ({@link FetchPools}). How it is verified follows from this alone ({@link
 * FetchCore#open}).
 *
 * @param table the data blob's chunk digest table, or null when the image has none
 * @param metadata an image's bootstrap: verified whole against its own digest
 */
public record BlobRef(Descriptor blob, Descriptor table, boolean metadata, String origin) {
  public BlobRef {
    if (metadata && table != null) {
      throw new IllegalArgumentException("a bootstrap has no chunk digest table");
    }
    if (LazyImage.isCompressed(blob) && (table == null || LazyImage.deviceSize(blob) < 0)) {
      throw new IllegalArgumentException(
          "blob "
              + blob.digest()
              + " of compressed chunks needs its digest table "
              + "and its uncompressed size");
    }
  }

  /**
   * The size of the device the blob holds, which its cache file is sized to: the blob's own size,
   * or for a blob of compressed chunks the uncompressed size its descriptor declares.
   */
  public long deviceSize() {
    return LazyImage.deviceSize(blob);
  }

  /**
   * Data blob {@code blob} with its digest table (or null) of an image whose reference is {@code
   * reference}.
   */
  public static BlobRef data(Descriptor blob, Descriptor table, String reference) {
    return new BlobRef(blob, table, false, FetchPools.origin(reference));
  }

  /** The bootstrap {@code blob} of an image whose reference is {@code reference}. */
  public static BlobRef metadata(Descriptor blob, String reference) {
    return new BlobRef(blob, null, true, FetchPools.origin(reference));
  }
}

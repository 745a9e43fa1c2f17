package dev.lazypull.fetch;

import dev.lazypull.image.Descriptor;

/**
 * A blob as a front end asks the fetch core for it: the blob, whether it is an image's metadata (its bootstrap)
 * or a data blob with its chunk digest table, and the origin whose fetch threads read it ({@link FetchPools}).
 * How it is verified follows from this alone ({@link FetchCore#open}).
 *
 * @param table the data blob's chunk digest table, or null when the image has none
 * @param metadata an image's bootstrap: verified whole against its own digest
 */
public record BlobRef(Descriptor blob, Descriptor table, boolean metadata, String origin) {
  public BlobRef {
    if (metadata && table != null) {
      throw new IllegalArgumentException("a bootstrap has no chunk digest table");
    }
  }

  /** Data blob {@code blob} with its digest table (or null) of an image whose reference is {@code reference}. */
  public static BlobRef data(Descriptor blob, Descriptor table, String reference) {
    return new BlobRef(blob, table, false, FetchPools.origin(reference));
  }

  /** The bootstrap {@code blob} of an image whose reference is {@code reference}. */
  public static BlobRef metadata(Descriptor blob, String reference) {
    return new BlobRef(blob, null, true, FetchPools.origin(reference));
  }
}

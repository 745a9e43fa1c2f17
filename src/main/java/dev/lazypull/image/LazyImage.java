package dev.lazypull.image;

import java.util.List;

/**
 * A resolved lazypull image: an OCI manifest whose layer 0 is the raw EROFS bootstrap and whose layers 1..n
 * are the data blobs, layer k serving EROFS device id k (docs/format.md).
 *
 * @param reference what the user asked for, as given (for messages and the catalog)
 * @param manifestDigest sha256 of the exact manifest bytes
 */
public record LazyImage(String reference, Digest manifestDigest, Manifest manifest, Descriptor bootstrap,
    List<Descriptor> blobs) {

  /** Largest blob we serve: EROFS block addresses are 32-bit, so a device tops out at 16 TiB with 4 KiB blocks. */
  public static final long MAX_BLOB_SIZE = 1L << 44;

  public LazyImage {
    blobs = List.copyOf(blobs);
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
    for (int i = 0; i < layers.size(); i++) {
      Descriptor d = layers.get(i);
      if (i > 0 && !MediaTypes.EROFS_BLOB.equals(d.mediaType())) {
        throw new InvalidImageException(reference + ": layer " + i + " (" + d.digest() + ") is " + d.mediaType()
            + ", expected " + MediaTypes.EROFS_BLOB);
      }
      if (d.size() <= 0 || d.size() > MAX_BLOB_SIZE) {
        throw new InvalidImageException(reference + ": layer " + i + " (" + d.digest() + ") has size " + d.size()
            + ", outside (0, " + MAX_BLOB_SIZE + "]");
      }
    }
    return new LazyImage(reference, manifestDigest, manifest, bootstrap, layers.subList(1, layers.size()));
  }

  /** Every blob the image reads: the bootstrap first, then the data blobs in device order. */
  public List<Descriptor> allBlobs() {
    return manifest.layers();
  }
}

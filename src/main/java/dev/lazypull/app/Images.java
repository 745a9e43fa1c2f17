package dev.lazypull.app;

import dev.lazypull.blob.ImageSource;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.DiskImage;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.Manifest;
import dev.lazypull.index.IndexedImages;
import dev.lazypull.oci.OciLayout;
import dev.lazypull.registry.RawManifest;
import dev.lazypull.registry.RegistryImageSource;
import java.io.IOException;

/**
 * Resolves a reference to either kind of image the NBD export serves: a filesystem image ({@link
 * LazyImage}) or a disk image ({@link DiskImage}: an imported disk, or a snapshot). The manifest is
 * fetched and verified once and its layer 0 decides.
 */
public final class Images {
  private Images() {}

  /** One of the two is set. */
  public record Resolved(LazyImage lazy, DiskImage disk) {
    public Digest manifestDigest() {
      return lazy != null ? lazy.manifestDigest() : disk.manifestDigest();
    }
  }

  /**
   * @param reference the reference as the user gave it (a disk image keeps it: its blobs' origin
   *     follows from it)
   */
  public static Resolved resolve(ImageSource source, String reference) throws IOException {
    Digest digest;
    byte[] bytes;
    // The index-aware wrapper (ordinary images through side-car indexes) hides the layout or
    // registry it reads: a disk image is told from its own manifest, so look through it.
    ImageSource base = source instanceof IndexedImages.Source indexed ? indexed.base() : source;
    if (base instanceof OciLayout oci) {
      Descriptor d = oci.findManifest();
      bytes = oci.readVerified(d);
      digest = d.digest();
    } else if (base instanceof RegistryImageSource registry) {
      RawManifest m = registry.resolveManifest();
      bytes = m.bytes();
      digest = m.digest();
    } else {
      return new Resolved(source.resolve(), null);
    }
    Manifest manifest = Json.parse(bytes, Manifest.class, reference + " manifest " + digest);
    if (DiskImage.isDisk(manifest)) {
      return new Resolved(null, DiskImage.of(reference, digest, manifest));
    }
    return new Resolved(source.resolve(), null);
  }
}

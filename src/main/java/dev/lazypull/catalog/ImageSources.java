package dev.lazypull.catalog;

import dev.lazypull.blob.ImageSource;
import dev.lazypull.image.ImageReference;
import dev.lazypull.oci.OciLayout;
import java.io.IOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * Opens image references, one {@link ImageSource} per reference for the life of the daemon (so connection
 * pools and token caches are shared by every blob of an image).
 */
public final class ImageSources {
  /** Opens registry references; absent until a registry client is configured. */
  public interface RegistryOpener {
    ImageSource open(ImageReference.Registry reference) throws IOException;
  }

  private final RegistryOpener registry;
  private final Map<String, ImageSource> open = new ConcurrentHashMap<>();

  public ImageSources(RegistryOpener registry) {
    this.registry = registry;
  }

  /** Local OCI layouts only. */
  public static ImageSources localOnly() {
    return new ImageSources(ref -> {
      throw new IOException(ref.canonical() + ": registry references need a registry client");
    });
  }

  public ImageSource open(String reference) throws IOException {
    ImageReference ref;
    try {
      ref = ImageReference.parse(reference);
    } catch (IllegalArgumentException e) {
      throw new IOException("bad image reference '" + reference + "': " + e.getMessage(), e);
    }
    String key = ref.canonical();
    ImageSource existing = open.get(key);
    if (existing != null) {
      return existing;
    }
    ImageSource created = create(ref);
    ImageSource raced = open.putIfAbsent(key, created);
    return raced != null ? raced : created;
  }

  private ImageSource create(ImageReference ref) throws IOException {
    if (ref instanceof ImageReference.OciLayout oci) {
      return new OciLayout(oci.dir(), oci.tag());
    }
    return registry.open((ImageReference.Registry) ref);
  }

  /** Drops a cached source (after unregistering an image, or when its config changed). */
  public void forget(String reference, Function<String, String> canonicalizer) {
    open.remove(canonicalizer.apply(reference));
  }
}

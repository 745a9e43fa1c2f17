package dev.lazypull.app;

import dev.lazypull.blob.ImageSource;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.PullOptions;
import dev.lazypull.index.IndexedImages;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryImageSource;
import java.nio.file.Path;

/**
 * Where images are opened from: local OCI layouts and, through one registry client, registry
 * references — with per-image registry settings ({@code --plain-http}, {@code --platform}) applied
 * to that client.
 */
public final class Sources {
  private Sources() {}

  public static ImageSources over(RegistryClient client) {
    return over(client, null);
  }

  /**
   * Also ordinary images through side-car indexes, with the index store of the host cache {@code
   * cacheDir} (null: lazypull images only).
   */
  public static ImageSources over(RegistryClient client, Path cacheDir) {
    IndexedImages indexes = cacheDir == null ? null : IndexedImages.inCache(cacheDir);
    return new ImageSources(
        new ImageSources.RegistryOpener() {
          @Override
          public ImageSource open(ImageReference.Registry reference) {
            return new RegistryImageSource(client, reference);
          }

          @Override
          public ImageSource open(ImageReference.Registry reference, PullOptions options) {
            return RegistryImageSource.open(client, reference, options);
          }
        },
        indexes);
  }
}

package dev.lazypull.app;

import dev.lazypull.catalog.ImageSources;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryImageSource;

/** Where images are opened from: local OCI layouts and, through one registry client, registry references. */
public final class Sources {
  private Sources() {}

  public static ImageSources over(RegistryClient client) {
    return new ImageSources(ref -> new RegistryImageSource(client, ref));
  }
}

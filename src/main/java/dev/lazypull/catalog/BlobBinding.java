package dev.lazypull.catalog;

import dev.lazypull.image.Descriptor;

/**
 * What an OPEN's (volume, cookie) names: one blob of one registered image.
 *
 * @param deviceId 0 for the bootstrap, k for data blob k
 */
public record BlobBinding(ImageRecord image, Descriptor blob, int deviceId) {
  public boolean isBootstrap() {
    return deviceId == 0;
  }
}

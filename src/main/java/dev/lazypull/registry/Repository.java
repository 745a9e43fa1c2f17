package dev.lazypull.registry;

import dev.lazypull.image.ImageReference;

/**
 * A repository on a registry.
 *
 * @param registry as written in references ({@code docker.io}, {@code localhost:5000})
 * @param name the repository path ({@code library/alpine})
 */
public record Repository(String registry, String name) {
  public static Repository of(ImageReference.Registry ref) {
    return new Repository(ref.registry(), ref.repository());
  }

  @Override
  public String toString() {
    return registry + "/" + name;
  }
}

package dev.lazypull.snapshotter;

import java.util.List;

/**
 * One mount containerd performs for a snapshot (its {@code mount.Mount}): type, source, fstab-style
 * options.
 */
public record MountSpec(String type, String source, List<String> options) {
  public MountSpec {
    options = List.copyOf(options);
  }
}

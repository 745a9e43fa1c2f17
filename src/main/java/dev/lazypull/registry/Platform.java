package dev.lazypull.registry;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.ImageIndex;
import java.util.List;
import java.util.Locale;

/**
 * A wanted platform, {@code os/arch[/variant]} (linux/amd64 by default), and the rule that picks
 * one entry of an image index: os and architecture must match; a wanted variant must match exactly;
 * without one, an entry without a variant is preferred over one with.
 */
public record Platform(String os, String architecture, String variant) {
  public static Platform parse(String text) {
    String[] p = text.trim().toLowerCase(Locale.ROOT).split("/");
    if (p.length < 2
        || p.length > 3
        || p[0].isEmpty()
        || p[1].isEmpty()
        || (p.length == 3 && p[2].isEmpty())) {
      throw new IllegalArgumentException(
          "platform must be os/arch[/variant], e.g. linux/amd64: " + text);
    }
    return new Platform(p[0], p[1], p.length == 3 ? p[2] : null);
  }

  /** The entry of {@code index} for this platform, or null. */
  public Descriptor select(ImageIndex index) {
    List<Descriptor> entries = index.manifests();
    Descriptor loose = null;
    for (Descriptor d : entries) {
      Descriptor.Platform p = d.platform();
      if (p == null
          || !os.equalsIgnoreCase(p.os())
          || !architecture.equalsIgnoreCase(p.architecture())) {
        continue;
      }
      boolean hasVariant = p.variant() != null && !p.variant().isEmpty();
      if (variant != null) {
        if (variant.equalsIgnoreCase(p.variant())) {
          return d;
        }
      } else if (!hasVariant) {
        return d;
      } else if (loose == null) {
        loose = d;
      }
    }
    return loose;
  }

  @Override
  public String toString() {
    return os + "/" + architecture + (variant == null ? "" : "/" + variant);
  }
}

package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageIndex;
import dev.lazypull.image.MediaTypes;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PlatformTest {
  private static Descriptor entry(String os, String arch, String variant, int n) {
    return new Descriptor(
        MediaTypes.OCI_MANIFEST,
        Digest.of(new byte[] {(byte) n}),
        100,
        Map.of(),
        new Descriptor.Platform(arch, os, variant));
  }

  @Test
  void selectsByOsArchAndVariant() {
    ImageIndex index =
        new ImageIndex(
            2,
            MediaTypes.OCI_INDEX,
            List.of(
                entry("linux", "arm", "v7", 1),
                entry("linux", "arm64", "v8", 2),
                entry("linux", "amd64", null, 3),
                entry("windows", "amd64", null, 4)),
            Map.of());
    assertEquals(entry("linux", "amd64", null, 3), Platform.parse("linux/amd64").select(index));
    assertEquals(entry("linux", "arm64", "v8", 2), Platform.parse("linux/arm64").select(index));
    assertEquals(entry("linux", "arm", "v7", 1), Platform.parse("linux/arm/v7").select(index));
    assertNull(Platform.parse("linux/arm/v6").select(index));
    assertNull(Platform.parse("linux/s390x").select(index));
    assertThrows(IllegalArgumentException.class, () -> Platform.parse("amd64"));
    assertThrows(IllegalArgumentException.class, () -> Platform.parse("linux/"));
  }
}

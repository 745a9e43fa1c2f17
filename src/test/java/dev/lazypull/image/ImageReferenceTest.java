package dev.lazypull.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class ImageReferenceTest {
  private static ImageReference.Registry reg(String s) {
    return assertInstanceOf(ImageReference.Registry.class, ImageReference.parse(s));
  }

  @Test
  void dockerHubDefaults() {
    ImageReference.Registry r = reg("busybox");
    assertEquals("docker.io", r.registry());
    assertEquals("registry-1.docker.io", r.apiHost());
    assertEquals("library/busybox", r.repository());
    assertEquals("latest", r.tag());
    assertEquals("library/busybox", reg("docker.io/busybox").repository());
    assertEquals("library/busybox", reg("index.docker.io/library/busybox:1.36").repository());
    assertEquals("org/app", reg("org/app:v1").repository());
  }

  @Test
  void hostsPortsTagsAndDigests() {
    ImageReference.Registry r = reg("127.0.0.1:5000/team/app:v2");
    assertEquals("127.0.0.1:5000", r.registry());
    assertEquals("team/app", r.repository());
    assertEquals("v2", r.tag());
    String hex = "a".repeat(64);
    ImageReference.Registry d = reg("localhost/app@sha256:" + hex);
    assertEquals("localhost", d.registry());
    assertNull(d.tag());
    assertEquals("sha256:" + hex, d.manifestReference());
    ImageReference.Registry both = reg("ghcr.io/o/app:1.0@sha256:" + hex);
    assertEquals("1.0", both.tag());
    assertEquals("sha256:" + hex, both.manifestReference());
  }

  @Test
  void badReferencesAreRejected() {
    assertThrows(IllegalArgumentException.class, () -> ImageReference.parse("Upper/Case"));
    assertThrows(IllegalArgumentException.class, () -> ImageReference.parse("a/b:bad tag"));
    assertThrows(IllegalArgumentException.class, () -> ImageReference.parse("a@sha512:abcd"));
    assertThrows(IllegalArgumentException.class, () -> ImageReference.parse(""));
    assertThrows(IllegalArgumentException.class, () -> ImageReference.parse("oci:"));
  }

  @Test
  void ociLayouts() {
    ImageReference.OciLayout o =
        assertInstanceOf(
            ImageReference.OciLayout.class, ImageReference.parse("oci:/var/images/x:v1"));
    assertEquals(Path.of("/var/images/x"), o.dir());
    assertEquals("v1", o.tag());
    ImageReference.OciLayout noTag =
        assertInstanceOf(ImageReference.OciLayout.class, ImageReference.parse("oci:/var/images/x"));
    assertNull(noTag.tag());
    assertEquals("oci:/var/images/x", noTag.canonical());
  }

  @Test
  void digestsAreStrict() {
    assertThrows(IllegalArgumentException.class, () -> Digest.parse("sha256:ABC"));
    assertThrows(IllegalArgumentException.class, () -> Digest.parse("md5:" + "a".repeat(32)));
    assertEquals("sha256:" + "0".repeat(64), Digest.parse("sha256:" + "0".repeat(64)).toString());
  }
}

package dev.lazypull.pack;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageIndex;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.Json;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.oci.OciLayout;
import dev.lazypull.oci.OciLayoutBlobSource;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * An ordinary image in a local OCI layout ({@code oci:DIR[:TAG]}); a tag naming an image index
 * (multi-platform) resolves to the manifest for the requested platform.
 */
public final class OciLayoutSourceImage implements SourceImage {
  private final String reference;
  private final OciLayout layout;
  private final OciLayoutBlobSource blobs;
  private final Digest manifestDigest;
  private final Manifest manifest;

  private OciLayoutSourceImage(
      String reference,
      OciLayout layout,
      OciLayoutBlobSource blobs,
      Digest digest,
      Manifest manifest) {
    this.reference = reference;
    this.layout = layout;
    this.blobs = blobs;
    this.manifestDigest = digest;
    this.manifest = manifest;
  }

  /**
   * @param platform "os/arch[/variant]" used when the tag names an index
   */
  public static OciLayoutSourceImage open(Path dir, String tag, String platform)
      throws IOException {
    String reference = "oci:" + dir + (tag == null ? "" : ":" + tag);
    OciLayout layout = new OciLayout(dir, tag);
    Descriptor d = findEntry(layout, tag, reference);
    if (MediaTypes.isIndex(d.mediaType())) {
      ImageIndex index =
          Json.parse(layout.readVerified(d), ImageIndex.class, reference + " index " + d.digest());
      d = selectPlatform(index, platform, reference);
    }
    if (!MediaTypes.isManifest(d.mediaType())) {
      throw new InvalidImageException(
          reference + ": " + d.digest() + " is " + d.mediaType() + ", not an image manifest");
    }
    Manifest m =
        Json.parse(layout.readVerified(d), Manifest.class, reference + " manifest " + d.digest());
    if (m.config() == null) {
      throw new InvalidImageException(reference + ": manifest " + d.digest() + " has no config");
    }
    return new OciLayoutSourceImage(reference, layout, new OciLayoutBlobSource(dir), d.digest(), m);
  }

  private static Descriptor findEntry(OciLayout layout, String tag, String reference)
      throws IOException {
    List<Descriptor> entries = layout.readIndex().manifests();
    Descriptor found = null;
    for (Descriptor e : entries) {
      if (tag == null ? entries.size() == 1 : tag.equals(e.annotation(OciLayout.REF_NAME))) {
        found = e;
      }
    }
    if (found == null) {
      throw new InvalidImageException(
          reference
              + (tag == null
                  ? ": index.json has " + entries.size() + " images; name one with oci:DIR:TAG"
                  : ": no image tagged '" + tag + "' in index.json"));
    }
    return found;
  }

  private static Descriptor selectPlatform(ImageIndex index, String platform, String reference)
      throws InvalidImageException {
    List<String> seen = new ArrayList<>();
    for (Descriptor m : index.manifests()) {
      if (m.platform() == null) {
        continue;
      }
      seen.add(m.platform().toString());
      String p = m.platform().os() + "/" + m.platform().architecture();
      String pv = m.platform().toString();
      if (platform.equals(p) || platform.equals(pv)) {
        return m;
      }
    }
    throw new InvalidImageException(
        reference + ": no manifest for platform " + platform + " (has " + seen + ")");
  }

  @Override
  public String reference() {
    return reference;
  }

  @Override
  public Digest manifestDigest() {
    return manifestDigest;
  }

  @Override
  public Manifest manifest() {
    return manifest;
  }

  @Override
  public byte[] config() throws IOException {
    return layout.readVerified(manifest.config());
  }

  @Override
  public InputStream openLayer(Descriptor layer) throws IOException {
    InputStream raw = Channels.newInputStream(blobs.openRange(layer, 0, layer.size()));
    return new VerifyingInputStream(raw, layer, reference + " layer");
  }
}

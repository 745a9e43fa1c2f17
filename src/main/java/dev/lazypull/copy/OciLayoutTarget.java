package dev.lazypull.copy;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.Descriptor;
import dev.lazypull.oci.OciLayoutWriter;
import dev.lazypull.registry.RawManifest;
import dev.lazypull.registry.Repository;
import java.io.IOException;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Path;

/**
 * Copies into a local OCI layout: blobs are verified (size and sha256) before they appear under
 * their digest.
 */
public final class OciLayoutTarget implements ImageCopier.Target {
  private final OciLayoutWriter writer;
  private final String tag;

  public OciLayoutTarget(Path dir, String tag) throws IOException {
    this.writer = new OciLayoutWriter(dir);
    this.tag = tag;
  }

  @Override
  public String putBlob(Descriptor blob, BlobSource from, Repository fromRepository)
      throws IOException {
    if (writer.hasBlob(blob)) {
      return PRESENT;
    }
    try (ReadableByteChannel in = from.openRange(blob, 0, blob.size())) {
      writer.putBlob(blob, in);
    }
    return "copied";
  }

  @Override
  public String putManifest(RawManifest manifest) throws IOException {
    Descriptor d = writer.putBlob(manifest.bytes(), manifest.mediaType());
    writer.tag(d, tag);
    return "oci:" + writer.dir() + (tag == null ? "" : ":" + tag);
  }
}

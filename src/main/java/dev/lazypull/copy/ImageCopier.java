package dev.lazypull.copy;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.blob.ImageSource;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Json;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.oci.OciLayout;
import dev.lazypull.registry.RawManifest;
import dev.lazypull.registry.RegistryImageSource;
import dev.lazypull.registry.Repository;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Copies one image between an OCI layout and a registry, in any direction: the config and every
 * layer that the target lacks, then the manifest's exact bytes (so its digest is unchanged), last —
 * a registry refuses a manifest whose blobs it does not hold, and a reader never sees a tag
 * pointing at missing blobs.
 */
public final class ImageCopier {
  /** Where blobs and the manifest go. */
  public interface Target {
    String PRESENT = "present";

    /**
     * Stores the blob, read from {@code from} (or mounted from {@code fromRepository} when the
     * target can), unless the target holds it already; returns a word for the progress line:
     * {@value #PRESENT} when it was there, else what was done ("uploaded", "mounted", "copied").
     */
    String putBlob(Descriptor blob, BlobSource from, Repository fromRepository) throws IOException;

    /**
     * Stores the manifest bytes under the target's tag; returns the target's name for the image.
     */
    String putManifest(RawManifest manifest) throws IOException;
  }

  /** What was copied. */
  public record Result(
      RawManifest manifest, int blobsCopied, int blobsPresent, long bytesCopied, String target) {}

  private ImageCopier() {}

  /**
   * The image manifest's exact bytes from a layout or a registry (index entries chosen by
   * platform).
   */
  public static RawManifest rawManifest(ImageSource source) throws IOException {
    if (source instanceof RegistryImageSource r) {
      return r.resolveManifest();
    }
    if (source instanceof OciLayout oci) {
      Descriptor d = oci.findManifest();
      return new RawManifest(oci.readVerified(d), d.mediaType(), d.digest());
    }
    throw new IOException("cannot copy from " + source.blobs().describe());
  }

  public static Result copy(ImageSource source, Target target, Consumer<String> progress)
      throws IOException {
    RawManifest raw = rawManifest(source);
    if (!MediaTypes.isManifest(raw.mediaType())) {
      throw new IOException(
          source.blobs().describe()
              + ": "
              + raw.digest()
              + " is "
              + raw.mediaType()
              + ", not an image manifest");
    }
    Manifest manifest =
        Json.parse(
            raw.bytes(), Manifest.class, source.blobs().describe() + " manifest " + raw.digest());
    List<Descriptor> blobs = new ArrayList<>();
    if (manifest.config() != null) {
      blobs.add(manifest.config());
    }
    blobs.addAll(manifest.layers());
    Repository fromRepo = source instanceof RegistryImageSource r ? r.repository() : null;
    int copied = 0;
    int present = 0;
    long bytes = 0;
    for (Descriptor blob : blobs) {
      String how =
          target.putBlob(blob, source.blobs(), fromRepo); // checks for the blob itself (one HEAD)
      if (how.equals(Target.PRESENT)) {
        present++;
      } else {
        copied++;
        bytes += blob.size();
      }
      progress.accept(String.format("%-8s %s  %d bytes", how, blob.digest(), blob.size()));
    }
    String name = target.putManifest(raw);
    progress.accept("manifest " + raw.digest() + " -> " + name);
    return new Result(raw, copied, present, bytes, name);
  }
}

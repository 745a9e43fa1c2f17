package dev.lazypull.registry;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import java.io.IOException;
import java.util.List;

/**
 * Publishes blobs and manifests to a registry repository. Push order matters: registries refuse a
 * manifest whose blobs (config included) they do not hold, so push every blob first and the
 * manifest last.
 */
public interface ImagePusher {
  /** Whether the repository already holds the blob (HEAD). */
  boolean hasBlob(Repository repo, Digest digest) throws IOException;

  /**
   * Makes the blob available in {@code repo}: nothing if it is there already, a cross-repository
   * mount from {@code mountFrom} (a repository of the same registry, or null) if the registry
   * allows it, else an upload of {@code content} — monolithic (POST + PUT) for small blobs, PATCH
   * chunks for large ones or when the registry refuses a monolithic PUT. The registry verifies the
   * digest.
   *
   * @return how the blob got there
   */
  PushResult pushBlob(Repository repo, Descriptor blob, BlobContent content, String mountFrom)
      throws IOException;

  /**
   * PUTs the exact manifest bytes under each tag (or by digest when {@code tags} is empty) and
   * returns their digest. A registry reporting a different digest is an error.
   */
  Digest pushManifest(Repository repo, byte[] manifest, String mediaType, List<String> tags)
      throws IOException;

  enum PushResult {
    EXISTED,
    MOUNTED,
    UPLOADED
  }
}

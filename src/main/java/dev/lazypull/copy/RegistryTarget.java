package dev.lazypull.copy;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.ImageReference;
import dev.lazypull.registry.BlobContent;
import dev.lazypull.registry.ImagePusher;
import dev.lazypull.registry.RawManifest;
import dev.lazypull.registry.Repository;
import java.io.IOException;
import java.util.List;

/**
 * Copies into a registry repository: blobs it lacks are mounted from the source repository when
 * both are on the same registry, else uploaded; the manifest is PUT under the reference's tag (or
 * by its digest, which must then match).
 */
public final class RegistryTarget implements ImageCopier.Target {
  private final ImagePusher pusher;
  private final ImageReference.Registry reference;
  private final Repository repository;

  public RegistryTarget(ImagePusher pusher, ImageReference.Registry reference) {
    this.pusher = pusher;
    this.reference = reference;
    this.repository = Repository.of(reference);
  }

  @Override
  public String putBlob(Descriptor blob, BlobSource from, Repository fromRepository)
      throws IOException {
    String mountFrom =
        fromRepository != null && fromRepository.registry().equals(repository.registry())
            ? fromRepository.name()
            : null;
    return switch (pusher.pushBlob(repository, blob, BlobContent.of(from, blob), mountFrom)) {
      case EXISTED -> PRESENT;
      case MOUNTED -> "mounted";
      case UPLOADED -> "uploaded";
    };
  }

  @Override
  public String putManifest(RawManifest manifest) throws IOException {
    if (reference.digest() != null && !reference.digest().equals(manifest.digest())) {
      throw new IOException(
          reference.canonical()
              + ": the manifest's digest is "
              + manifest.digest()
              + ", not the one in the destination reference");
    }
    List<String> tags =
        reference.digest() != null && reference.tag() == null
            ? List.of()
            : List.of(reference.tag());
    pusher.pushManifest(repository, manifest.bytes(), manifest.mediaType(), tags);
    return repository + (tags.isEmpty() ? "" : ":" + tags.get(0)) + "@" + manifest.digest();
  }
}

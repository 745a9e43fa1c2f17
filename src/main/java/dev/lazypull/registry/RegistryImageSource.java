package dev.lazypull.registry;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.blob.ImageSource;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.ImageIndex;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.image.PullOptions;
import java.io.IOException;
import java.util.stream.Collectors;

/**
 * An image in a registry: resolves {@code HOST/REPO[:TAG|@DIGEST]} to its manifest — through an
 * index by platform when it is one — verifying every digest, and serves its blobs from the same
 * repository.
 */
public final class RegistryImageSource implements ImageSource {
  private final RegistryClient client;
  private final ImageReference.Registry reference;
  private final Repository repository;
  private final Platform platform;
  private final RegistryBlobSource blobs;

  public RegistryImageSource(RegistryClient client, ImageReference.Registry reference) {
    this(client, reference, null);
  }

  /**
   * With {@code platform} ({@code os/arch[/variant]}) picked from an index instead of the client's
   * default.
   */
  public RegistryImageSource(
      RegistryClient client, ImageReference.Registry reference, String platform) {
    this.client = client;
    this.reference = reference;
    this.repository = Repository.of(reference);
    this.platform = Platform.parse(platform != null ? platform : client.config().platform());
    this.blobs = new RegistryBlobSource(client, repository);
  }

  /**
   * An image with per-image registry settings: its platform, and plain HTTP for its registry (which
   * the client applies to that registry host from now on).
   */
  public static RegistryImageSource open(
      RegistryClient client, ImageReference.Registry reference, PullOptions options) {
    RegistryImageSource s = new RegistryImageSource(client, reference, options.platform());
    if (options.plainHttp()) {
      client.usePlainHttp(reference.registry());
    }
    return s;
  }

  public Repository repository() {
    return repository;
  }

  public RegistryClient client() {
    return client;
  }

  public ImageReference.Registry reference() {
    return reference;
  }

  /**
   * The image manifest's exact bytes: the reference's manifest, or the platform's entry of its
   * index. The digest of a pinned reference, and of an index entry, is checked.
   */
  public RawManifest resolveManifest() throws IOException {
    RawManifest m =
        client.fetchManifest(repository, reference.manifestReference(), reference.digest());
    if (!MediaTypes.isIndex(m.mediaType())) {
      return m;
    }
    String what = reference.canonical() + ": index " + m.digest();
    ImageIndex index = Json.parse(m.bytes(), ImageIndex.class, what);
    Descriptor entry = platform.select(index);
    if (entry == null) {
      String has =
          index.manifests().stream()
              .map(d -> d.platform() == null ? "(no platform)" : d.platform().toString())
              .collect(Collectors.joining(", "));
      throw new InvalidImageException(
          what
              + " has no manifest for "
              + platform
              + " (it has: "
              + (has.isEmpty() ? "nothing" : has)
              + "); choose one with --platform or registry.platform");
    }
    if (entry.size() > Json.MAX_DOCUMENT_BYTES) {
      throw new InvalidImageException(
          what + ": entry " + entry.digest() + " claims " + entry.size() + " bytes");
    }
    RawManifest child = client.fetchManifest(repository, entry.digest().toString(), entry.digest());
    if (child.bytes().length != entry.size()) {
      throw new InvalidImageException(
          what
              + ": manifest "
              + entry.digest()
              + " has "
              + child.bytes().length
              + " bytes, the index says "
              + entry.size());
    }
    if (MediaTypes.isIndex(child.mediaType())) {
      throw new InvalidImageException(what + ": entry " + entry.digest() + " is another index");
    }
    return child;
  }

  @Override
  public LazyImage resolve() throws IOException {
    RawManifest m = resolveManifest();
    Manifest manifest =
        Json.parse(m.bytes(), Manifest.class, reference.canonical() + " manifest " + m.digest());
    return LazyImage.of(reference.canonical(), m.digest(), manifest);
  }

  @Override
  public BlobSource blobs() {
    return blobs;
  }
}

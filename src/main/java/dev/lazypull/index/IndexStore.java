package dev.lazypull.index;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.oci.OciLayout;
import dev.lazypull.oci.OciLayoutBlobSource;
import dev.lazypull.oci.OciLayoutWriter;
import dev.lazypull.pack.ImageOutput;
import dev.lazypull.pack.OciLayoutOutput;
import java.io.IOException;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * The host's local store of side-car indexes ({@code <cache>/indexes}, an OCI image layout):
 * indexes built here ({@code lazypull index} without {@code --push}, {@code mount
 * --index-locally}), each tagged {@code sha256-<image manifest hex>.lazypull-index}, and verified
 * copies of the index parts fetched from registries (so a restart or a second process needs no
 * registry request for them, and zinfo windows are read from a file rather than held in memory).
 */
public final class IndexStore {
  private final Path dir;
  private final OciLayoutBlobSource blobs;

  public IndexStore(Path dir) {
    this.dir = dir.toAbsolutePath().normalize();
    this.blobs = new OciLayoutBlobSource(this.dir);
  }

  /** The store of the host cache {@code cacheDir}. */
  public static IndexStore inCache(Path cacheDir) {
    return new IndexStore(cacheDir.resolve("indexes"));
  }

  public Path dir() {
    return dir;
  }

  /**
   * The index manifest stored for the image {@code subject}, checked against its digest, if any.
   */
  public Optional<byte[]> find(Digest subject) throws IOException {
    if (!Files.isRegularFile(dir.resolve("index.json"))) {
      return Optional.empty();
    }
    OciLayout layout = new OciLayout(dir, IndexArtifact.localTag(subject));
    Descriptor d;
    try {
      d = layout.findManifest();
    } catch (InvalidImageException e) {
      return Optional.empty(); // no such tag
    }
    return Optional.of(layout.readVerified(d));
  }

  public boolean has(Descriptor blob) {
    Path p = blobs.blobPath(blob);
    try {
      return Files.isRegularFile(p) && Files.size(p) == blob.size();
    } catch (IOException e) {
      return false;
    }
  }

  public BlobSource blobs() {
    return blobs;
  }

  /**
   * The path of a verified local copy of {@code blob}: the stored one, or one fetched from {@code
   * from} now (its size and sha256 checked before it is kept).
   */
  public Path fetch(Descriptor blob, BlobSource from) throws IOException {
    Path p = blobs.blobPath(blob);
    if (!has(blob)) {
      OciLayoutWriter w = new OciLayoutWriter(dir);
      try (ReadableByteChannel in = from.openRange(blob, 0, blob.size())) {
        w.putBlob(blob, in);
      }
    }
    return p;
  }

  /** Where an index of {@code subject} built here goes: tagged for {@link #find}. */
  public ImageOutput output(Digest subject) throws IOException {
    return new OciLayoutOutput(dir, IndexArtifact.localTag(subject));
  }
}

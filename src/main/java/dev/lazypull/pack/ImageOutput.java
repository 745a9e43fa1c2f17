package dev.lazypull.pack;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Where a built image goes: a local OCI layout ({@link OciLayoutOutput}) or a registry push ({@link
 * RegistryOutput}). Content is staged in scratch files, committed as blobs under the digest the
 * builder computed while writing, and published by one final {@link #publish} so a failed build
 * never leaves a tagged half-image.
 */
public interface ImageOutput extends Closeable {
  /** A new empty scratch file for content that is written incrementally or with random access. */
  Path newScratchFile() throws IOException;

  /**
   * Commits a finished scratch file as a blob ({@code digest} = sha256 of its bytes, computed by
   * the caller).
   */
  Descriptor putFile(Path scratch, String mediaType, Digest digest) throws IOException;

  /** Commits small content (configs, tables, manifests) as a blob. */
  Descriptor putBytes(byte[] bytes, String mediaType) throws IOException;

  /** Publishes a manifest (already stored with {@link #putBytes}) under the output's tag. */
  void publish(Descriptor manifest) throws IOException;

  /** Where the image goes, for messages. */
  String describe();

  /** Deletes scratch files that were never committed. */
  @Override
  void close() throws IOException;
}

package dev.lazypull.pack;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.Manifest;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;

/**
 * An ordinary container image to convert: its manifest, config and layer blobs. Implementations
 * verify what they hand out: the config against its digest, each layer stream against its
 * descriptor (a mismatch fails the stream at its end, so a conversion that read a tampered layer
 * fails before anything is published). Implementations: local OCI layouts, registries.
 */
public interface SourceImage extends Closeable {
  /** The reference as given, for messages. */
  String reference();

  Digest manifestDigest();

  Manifest manifest();

  /** The config blob's bytes (verified). */
  byte[] config() throws IOException;

  /**
   * The raw (possibly compressed) bytes of a layer, verified against its digest and size as they
   * are read.
   */
  InputStream openLayer(Descriptor layer) throws IOException;

  /** Releases what the source holds (scratch files, download threads); nothing by default. */
  @Override
  default void close() throws IOException {}
}

package dev.lazypull.blob;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.LazyImage;
import java.io.IOException;

/** Resolves one image reference to its manifest and gives access to its blobs. */
public interface ImageSource {
  /**
   * Fetches and verifies the manifest (digest checked against what was asked for) and checks the
   * layout.
   */
  LazyImage resolve() throws IOException;

  /** Where this image's blobs are read from. */
  BlobSource blobs();

  /** Reads {@code [offset, offset+length)} of a blob into memory; for small metadata reads only. */
  default byte[] readRange(Descriptor blob, long offset, int length) throws IOException {
    return blobs().read(blob, offset, length);
  }
}

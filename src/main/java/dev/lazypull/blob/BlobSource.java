package dev.lazypull.blob;

import dev.lazypull.image.Descriptor;
import java.io.IOException;
import java.nio.channels.ReadableByteChannel;

/**
 * Reads byte ranges of content-addressed blobs: a local OCI layout, a registry, a mirror. The fetch core only
 * ever asks for ranges inside {@code [0, blob.size())}.
 */
public interface BlobSource {
  /**
   * Opens bytes {@code [offset, offset + length)} of {@code blob} as a stream the caller reads to the end and
   * closes. The stream yields exactly {@code length} bytes or fails with an IOException: a source never returns
   * a short or long body silently.
   */
  ReadableByteChannel openRange(Descriptor blob, long offset, long length) throws IOException;

  /** Where the bytes come from, for errors and logs (never includes credentials). */
  String describe();

  /**
   * Like {@link #openRange} but never from a mirror: after bytes from a mirror failed verification, the fetch
   * core asks the origin once. Sources without mirrors read as usual.
   */
  default ReadableByteChannel openRangeFromOrigin(Descriptor blob, long offset, long length) throws IOException {
    return openRange(blob, offset, length);
  }

  /** Implemented by range streams that can say whether a mirror (not the origin) served them. */
  interface Served {
    boolean fromMirror();

    /** The endpoint that served the bytes, for logs (no credentials). */
    String servedBy();
  }
}

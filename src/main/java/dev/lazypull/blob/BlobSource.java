package dev.lazypull.blob;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;

/**
 * Reads byte ranges of content-addressed blobs: a local OCI layout, a registry, a mirror. The fetch
 * core only ever asks for ranges inside {@code [0, blob.size())}.
 */
public interface BlobSource {
  /**
   * Opens bytes {@code [offset, offset + length)} of {@code blob} as a stream the caller reads to
   * the end and closes. The stream yields exactly {@code length} bytes or fails with an
   * IOException: a source never returns a short or long body silently.
   */
  ReadableByteChannel openRange(Descriptor blob, long offset, long length) throws IOException;

  /** Where the bytes come from, for errors and logs (never includes credentials). */
  String describe();

  /**
   * Like {@link #openRange} but never from a mirror: after bytes from a mirror failed verification,
   * the fetch core asks the origin once. Sources without mirrors read as usual.
   */
  default ReadableByteChannel openRangeFromOrigin(Descriptor blob, long offset, long length)
      throws IOException {
    return openRange(blob, offset, length);
  }

  /** Reads {@code [offset, offset+length)} of a blob into memory; for small metadata reads only. */
  default byte[] read(Descriptor blob, long offset, int length) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(length);
    try (ReadableByteChannel ch = openRange(blob, offset, length)) {
      while (buf.hasRemaining()) {
        if (ch.read(buf) < 0) {
          throw new IOException(describe() + ": blob " + blob.digest() + " ended early");
        }
      }
    }
    return buf.array();
  }

  /**
   * All of a small blob (a config, a digest table, a profile) in memory, at most {@code max} bytes,
   * checked against its digest before anyone sees it.
   *
   * @param what names the blob in errors ("config", "chunk digest table")
   * @throws IOException naming the source and the blob if it is over {@code max}, short, or hashes
   *     to another digest
   */
  default byte[] readVerified(Descriptor blob, long max, String what) throws IOException {
    if (blob.size() > max) {
      throw new IOException(
          describe()
              + ": "
              + what
              + " "
              + blob.digest()
              + " is "
              + blob.size()
              + " bytes (limit "
              + max
              + ")");
    }
    byte[] bytes = read(blob, 0, (int) blob.size());
    Digest actual = Digest.of(bytes);
    if (!actual.equals(blob.digest())) {
      throw new IOException(
          describe() + ": " + what + " " + blob.digest() + " hashes to " + actual);
    }
    return bytes;
  }

  /** Implemented by range streams that can say whether a mirror (not the origin) served them. */
  interface Served {
    boolean fromMirror();

    /** The endpoint that served the bytes, for logs (no credentials). */
    String servedBy();
  }
}

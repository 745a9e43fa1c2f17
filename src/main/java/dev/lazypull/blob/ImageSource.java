package dev.lazypull.blob;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.LazyImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;

/** Resolves one image reference to its manifest and gives access to its blobs. */
public interface ImageSource {
  /** Fetches and verifies the manifest (digest checked against what was asked for) and checks the layout. */
  LazyImage resolve() throws IOException;

  /** Where this image's blobs are read from. */
  BlobSource blobs();

  /** Reads {@code [offset, offset+length)} of a blob into memory; for small metadata reads only. */
  default byte[] readRange(Descriptor blob, long offset, int length) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(length);
    try (ReadableByteChannel ch = blobs().openRange(blob, offset, length)) {
      while (buf.hasRemaining()) {
        if (ch.read(buf) < 0) {
          throw new IOException(blobs().describe() + ": blob " + blob.digest() + " ended early");
        }
      }
    }
    return buf.array();
  }
}

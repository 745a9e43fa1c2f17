package dev.lazypull.registry;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.Descriptor;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;

/**
 * The bytes of a blob to upload, re-readable from any offset (a retried upload starts over; a
 * chunked one reads each chunk separately).
 */
public interface BlobContent {
  long size();

  /** A stream of the bytes from {@code offset} to the end. */
  InputStream open(long offset) throws IOException;

  /** The blob as a {@link BlobSource} serves it (a local layout, another registry, …). */
  static BlobContent of(BlobSource source, Descriptor blob) {
    return new BlobContent() {
      @Override
      public long size() {
        return blob.size();
      }

      @Override
      public InputStream open(long offset) throws IOException {
        return Channels.newInputStream(source.openRange(blob, offset, blob.size() - offset));
      }
    };
  }

  static BlobContent of(byte[] bytes) {
    return new BlobContent() {
      @Override
      public long size() {
        return bytes.length;
      }

      @Override
      public InputStream open(long offset) {
        return new ByteArrayInputStream(bytes, (int) offset, bytes.length - (int) offset);
      }
    };
  }
}

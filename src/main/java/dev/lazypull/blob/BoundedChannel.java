package dev.lazypull.blob;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;

/**
 * Yields exactly {@code length} bytes of an underlying channel: a premature end is an error naming
 * what was being read, and bytes past {@code length} are never handed out.
 */
public final class BoundedChannel implements ReadableByteChannel {
  private final ReadableByteChannel in;
  private final String what;
  private long remaining;

  public BoundedChannel(ReadableByteChannel in, long length, String what) {
    this.in = in;
    this.remaining = length;
    this.what = what;
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    if (remaining == 0) {
      return -1;
    }
    if (!dst.hasRemaining()) {
      return 0;
    }
    int limit = dst.limit();
    if (dst.remaining() > remaining) {
      dst.limit(dst.position() + (int) remaining);
    }
    try {
      int n = in.read(dst);
      if (n < 0) {
        throw new EOFException(what + ": body ended " + remaining + " bytes early");
      }
      remaining -= n;
      return n;
    } finally {
      dst.limit(limit);
    }
  }

  public long remaining() {
    return remaining;
  }

  @Override
  public boolean isOpen() {
    return in.isOpen();
  }

  @Override
  public void close() throws IOException {
    in.close();
  }
}

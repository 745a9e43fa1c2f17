package dev.lazypull.app;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.erofs.ByteSource;
import dev.lazypull.image.Descriptor;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A blob as random-access bytes, read by range in 64 KiB pages with a small LRU cache (16 MiB):
 * walking a bootstrap this way fetches only the metadata it touches, from a local layout or a
 * registry alike.
 */
public final class BlobByteSource implements ByteSource {
  private static final int PAGE = 64 << 10;
  private static final int MAX_PAGES = 256;

  private final BlobSource source;
  private final Descriptor blob;
  private final Map<Long, byte[]> pages =
      new LinkedHashMap<>(16, 0.75f, true) {
        private static final long serialVersionUID = 1L;

        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, byte[]> eldest) {
          return size() > MAX_PAGES;
        }
      };

  public BlobByteSource(BlobSource source, Descriptor blob) {
    this.source = source;
    this.blob = blob;
  }

  @Override
  public long size() {
    return blob.size();
  }

  @Override
  public synchronized void read(long offset, ByteBuffer dst) throws IOException {
    if (offset < 0 || offset + dst.remaining() > blob.size()) {
      throw new EOFException(
          "read [" + offset + ", +" + dst.remaining() + ") outside blob " + blob.digest());
    }
    long pos = offset;
    while (dst.hasRemaining()) {
      long page = pos / PAGE;
      byte[] data = page(page);
      int in = (int) (pos - page * PAGE);
      int n = Math.min(dst.remaining(), data.length - in);
      dst.put(data, in, n);
      pos += n;
    }
  }

  private byte[] page(long page) throws IOException {
    byte[] data = pages.get(page);
    if (data == null) {
      long start = page * PAGE;
      int len = (int) Math.min(PAGE, blob.size() - start);
      ByteBuffer buf = ByteBuffer.allocate(len);
      try (ReadableByteChannel ch = source.openRange(blob, start, len)) {
        while (buf.hasRemaining()) {
          if (ch.read(buf) < 0) {
            throw new EOFException(source.describe() + ": blob " + blob.digest() + " ended early");
          }
        }
      }
      data = buf.array();
      pages.put(page, data);
    }
    return data;
  }
}

package dev.lazypull.erofs;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/** Random-access bytes of an image (a file, memory, a blob read by range). */
public interface ByteSource {
  /** Total length in bytes. */
  long size();

  /** Fills {@code dst}'s remaining bytes from {@code offset}; fails rather than return short. */
  void read(long offset, ByteBuffer dst) throws IOException;

  static ByteSource of(byte[] bytes) {
    return new ByteSource() {
      @Override
      public long size() {
        return bytes.length;
      }

      @Override
      public void read(long offset, ByteBuffer dst) throws IOException {
        if (offset < 0 || offset + dst.remaining() > bytes.length) {
          throw new EOFException(
              "read [" + offset + ", +" + dst.remaining() + ") past " + bytes.length + " bytes");
        }
        dst.put(bytes, (int) offset, dst.remaining());
      }
    };
  }

  static ByteSource of(FileChannel ch) throws IOException {
    long size = ch.size();
    return new ByteSource() {
      @Override
      public long size() {
        return size;
      }

      @Override
      public void read(long offset, ByteBuffer dst) throws IOException {
        if (offset < 0 || offset + dst.remaining() > size) {
          throw new EOFException(
              "read [" + offset + ", +" + dst.remaining() + ") past " + size + " bytes");
        }
        long pos = offset;
        while (dst.hasRemaining()) {
          int n = ch.read(dst, pos);
          if (n < 0) {
            throw new EOFException("file ended at " + pos);
          }
          pos += n;
        }
      }
    };
  }
}

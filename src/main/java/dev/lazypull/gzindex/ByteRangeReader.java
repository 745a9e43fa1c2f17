package dev.lazypull.gzindex;

import java.io.EOFException;
import java.io.IOException;

/** Reads byte ranges of the compressed layer (a registry blob by HTTP Range, a local file). */
public interface ByteRangeReader {
  /**
   * Reads exactly {@code len} bytes at {@code offset} into {@code dst[off..off+len)}, or throws.
   */
  void readFully(long offset, byte[] dst, int off, int len) throws IOException;

  /** A reader over bytes in memory. */
  static ByteRangeReader of(byte[] bytes) {
    return (offset, dst, off, len) -> {
      if (offset < 0 || offset + len > bytes.length) {
        throw new EOFException(
            "range " + offset + "+" + len + " beyond " + bytes.length + " bytes");
      }
      System.arraycopy(bytes, (int) offset, dst, off, len);
    };
  }
}

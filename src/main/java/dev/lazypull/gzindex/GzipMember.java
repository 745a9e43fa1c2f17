package dev.lazypull.gzindex;

import java.io.IOException;
import java.util.zip.CRC32;

/**
 * The gzip member framing around a deflate stream (RFC 1952): header and trailer, read through a
 * decoder.
 */
final class GzipMember {
  private GzipMember() {}

  /**
   * Reads one member header at the decoder's (byte-aligned) position.
   *
   * @param member 1-based member number, for messages (0 if not known)
   * @throws GzipFormatException for bad magic, method, flags or header CRC, or truncation
   */
  static void readHeader(DeflateDecoder dec, int member) throws IOException {
    long at = dec.bitPosition() >>> 3;
    CRC32 hcrc = new CRC32();
    int[] h = new int[10];
    for (int i = 0; i < 10; i++) {
      int b = dec.readByte();
      if (b < 0) {
        if (member == 1 && i == 0) {
          throw new GzipFormatException("empty input: not a gzip stream");
        }
        throw new GzipFormatException(
            "gzip stream truncated in the header of member "
                + member
                + " at compressed offset "
                + (at + i));
      }
      h[i] = b;
      hcrc.update(b);
      if ((i == 0 && b != 0x1f) || (i == 1 && b != 0x8b)) {
        throw new GzipFormatException(
            member == 1
                ? "not a gzip stream (bad magic at offset " + (at + i) + ")"
                : "bytes after a gzip member at compressed offset "
                    + at
                    + " are not another gzip member");
      }
    }
    if (h[2] != 8) {
      throw new GzipFormatException(
          "gzip member " + member + " at offset " + at + ": unknown compression method " + h[2]);
    }
    int flags = h[3];
    if ((flags & 0xe0) != 0) {
      throw new GzipFormatException(
          "gzip member " + member + " at offset " + at + ": reserved flags set");
    }
    if ((flags & 4) != 0) { // FEXTRA
      int lo = headerByte(dec, member);
      int hi = headerByte(dec, member);
      hcrc.update(lo);
      hcrc.update(hi);
      for (int i = 0, n = lo | hi << 8; i < n; i++) {
        hcrc.update(headerByte(dec, member));
      }
    }
    for (int flag : new int[] {8, 16}) { // FNAME, FCOMMENT: zero-terminated
      if ((flags & flag) != 0) {
        int b;
        do {
          b = headerByte(dec, member);
          hcrc.update(b);
        } while (b != 0);
      }
    }
    if ((flags & 2) != 0) { // FHCRC
      int v = headerByte(dec, member) | headerByte(dec, member) << 8;
      if (v != ((int) hcrc.getValue() & 0xffff)) {
        throw new GzipFormatException(
            "gzip member " + member + " at offset " + at + ": header CRC mismatch");
      }
    }
  }

  private static int headerByte(DeflateDecoder dec, int member) throws IOException {
    return byteOrFail(dec, member, "header");
  }

  private static int byteOrFail(DeflateDecoder dec, int member, String where) throws IOException {
    long at = dec.bitPosition() >>> 3;
    int b = dec.readByte();
    if (b < 0) {
      throw new GzipFormatException(
          "gzip stream truncated in the "
              + where
              + " of member "
              + member
              + " at compressed offset "
              + at);
    }
    return b;
  }

  /** Reads the 8-byte trailer: returns {CRC32, ISIZE} as unsigned values. */
  static long[] readTrailer(DeflateDecoder dec, int member) throws IOException {
    long[] v = new long[2];
    for (int k = 0; k < 2; k++) {
      for (int i = 0; i < 4; i++) {
        v[k] |= (long) byteOrFail(dec, member, "trailer") << (8 * i);
      }
    }
    return v;
  }
}

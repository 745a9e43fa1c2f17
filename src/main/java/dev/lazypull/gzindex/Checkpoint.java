package dev.lazypull.gzindex;

/**
 * A place to resume inflating: a deflate block boundary (or the start of a gzip member's deflate
 * data), in the zinfo convention of zlib's zran.c, SOCI and erofs-utils.
 *
 * @param in the compressed offset of the first byte after the boundary's bit position, rounded up
 * @param bits how many high bits of byte {@code in - 1} still belong to the data after the boundary
 *     (0–7); the boundary is at bit {@code 8 * in - bits}
 * @param out the uncompressed offset of the first byte produced after the boundary
 */
public record Checkpoint(long in, int bits, long out) {
  public Checkpoint {
    if (bits < 0 || bits > 7 || in < 0 || out < 0 || (bits != 0 && in == 0)) {
      throw new IllegalArgumentException(
          "bad checkpoint in=" + in + " bits=" + bits + " out=" + out);
    }
  }

  /** The checkpoint at compressed bit position {@code bitPosition}. */
  public static Checkpoint atBit(long bitPosition, long out) {
    long in = (bitPosition + 7) >>> 3;
    return new Checkpoint(in, (int) (in * 8 - bitPosition), out);
  }

  /** The compressed bit position of the boundary. */
  public long bitPosition() {
    return in * 8 - bits;
  }

  /**
   * The first compressed byte needed to resume here ({@code in - 1} when the boundary is inside a
   * byte).
   */
  public long firstByte() {
    return bits == 0 ? in : in - 1;
  }
}

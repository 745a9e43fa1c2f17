package dev.lazypull.overlay;

import java.nio.ByteBuffer;

/**
 * Whether bytes are all zero, fast (as qemu's {@code buffer_is_zero}): three sampled bytes first,
 * which settle most data at once, then a comparison against a zero buffer with {@link
 * ByteBuffer#mismatch}, which the JDK runs vectorized.
 */
public final class ZeroCheck {
  /** Zeros to compare against; also a source of zero bytes (read-only, never written). */
  static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(64 << 10).asReadOnlyBuffer();

  private ZeroCheck() {}

  /** Whether {@code b}'s remaining bytes are all zero (position and limit unchanged). */
  public static boolean isZero(ByteBuffer b) {
    int p = b.position();
    int n = b.remaining();
    if (n == 0) {
      return true;
    }
    if (b.get(p) != 0 || b.get(p + n - 1) != 0 || b.get(p + n / 2) != 0) {
      return false;
    }
    for (int off = 0; off < n; off += ZEROS.capacity()) {
      int k = Math.min(ZEROS.capacity(), n - off);
      if (b.slice(p + off, k).mismatch(ZEROS.slice(0, k)) != -1) {
        return false;
      }
    }
    return true;
  }

  /** Puts {@code n} zero bytes into {@code dst}. */
  public static void fill(ByteBuffer dst, long n) {
    while (n > 0) {
      int k = (int) Math.min(n, ZEROS.capacity());
      dst.put(ZEROS.slice(0, k));
      n -= k;
    }
  }
}

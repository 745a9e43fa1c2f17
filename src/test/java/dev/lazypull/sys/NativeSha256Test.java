package dev.lazypull.sys;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.lazypull.image.Digest;
import dev.lazypull.image.Sha256Stream;
import dev.lazypull.testing.Requirements;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** libcrypto's SHA-256 gives the JDK's digest for every length, position and limit. */
class NativeSha256Test {
  private static byte[] jdk(ByteBuffer b) {
    MessageDigest md = Digest.sha256();
    md.update(b.duplicate());
    return md.digest();
  }

  @Test
  void matchesTheJdkForEveryLengthAndOffset() {
    // Debian 12 always has libcrypto.so.3 (libssl3, installed by .ci/install-deps).
    Requirements.require(NativeSha256.available(), "libcrypto.so.3 (libssl3)");
    Random rnd = new Random(17);
    byte[] bytes = new byte[(1 << 20) + 77];
    rnd.nextBytes(bytes);
    ByteBuffer all = ByteBuffer.allocateDirect(bytes.length).put(bytes).flip();
    int[] lengths = {0, 1, 3, 55, 56, 63, 64, 65, 4095, 4096, 65_537, 1 << 20};
    for (int off : new int[] {0, 1, 13}) {
      for (int len : lengths) {
        ByteBuffer b = all.duplicate().position(off).limit(off + len);
        byte[] got = NativeSha256.digest(b);
        assertArrayEquals(jdk(b), got, "offset " + off + ", length " + len);
        assertEquals(off, b.position(), "position unchanged");
        assertEquals(off + len, b.limit());
      }
    }
  }

  @Test
  void aChangedByteChangesTheDigest() {
    Requirements.require(NativeSha256.available(), "libcrypto.so.3 (libssl3)");
    ByteBuffer b = ByteBuffer.allocateDirect(8192);
    byte[] before = NativeSha256.digest(b.duplicate());
    b.put(5000, (byte) 1);
    assertFalse(Arrays.equals(before, NativeSha256.digest(b.duplicate())));
  }

  @Test
  void digestOfHeapAndDirectBuffersAgree() {
    byte[] bytes = new byte[100_000];
    new Random(3).nextBytes(bytes);
    ByteBuffer heap = ByteBuffer.wrap(bytes, 10, 50_000);
    ByteBuffer direct =
        ByteBuffer.allocateDirect(bytes.length).put(bytes).position(10).limit(50_010);
    assertArrayEquals(Digest.sha256Of(heap), Digest.sha256Of(direct));
    assertArrayEquals(jdk(heap), Digest.sha256Of(heap));
    assertEquals(10, heap.position());
    assertEquals(10, direct.position());
  }

  @Test
  void aContextFedInPiecesGivesTheDigestOfTheWhole() {
    Requirements.require(NativeSha256.available(), "libcrypto.so.3 (libssl3)");
    byte[] bytes = new byte[3 * 65_536 + 101];
    new Random(5).nextBytes(bytes);
    ByteBuffer all = ByteBuffer.allocateDirect(bytes.length).put(bytes).flip();
    NativeSha256.Context c = new NativeSha256.Context();
    int[] cuts = {0, 1, 64, 4097, 65_536, 131_073, bytes.length};
    for (int k = 1; k < cuts.length; k++) {
      c.update(all.duplicate().position(cuts[k - 1]).limit(cuts[k]));
    }
    assertArrayEquals(jdk(all), c.digest());
    assertThrows(IllegalStateException.class, c::digest, "a context gives one digest");
    new NativeSha256.Context().close(); // never digested: freed, nothing else
  }

  @Test
  void aStreamTakesHeapAndDirectBuffersAlike() {
    byte[] bytes = new byte[70_000];
    new Random(8).nextBytes(bytes);
    try (Sha256Stream s = new Sha256Stream()) {
      s.update(ByteBuffer.wrap(bytes, 0, 30_000));
      s.update(ByteBuffer.allocateDirect(40_000).put(bytes, 30_000, 40_000).flip());
      assertArrayEquals(jdk(ByteBuffer.wrap(bytes)), s.digest());
    }
  }
}

package dev.lazypull.sys;

import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.util.HexFormat;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * SHA-256 of off-heap bytes through the system's libcrypto (OpenSSL 3), when it loads and passes a
 * known-answer check; {@link #available()} is false otherwise and callers use the JDK's digest.
 *
 * <p>Why: the JDK's SHA-256 runs as Java code until C2 has compiled {@code
 * DigestBase.implCompressMultiBlock0} into its SHA-NI stub, about 2 s into a process. A short-lived
 * command (standalone prefetch, a fresh {@code nbd} export, a daemon's first image) hashes most of
 * its bytes before that, at a fraction of the stub's speed: 30 % of a standalone prefetch's CPU
 * samples were Java SHA-256 (docs/benchmarks.md). libcrypto picks its SHA-NI / AVX2 code when it
 * loads, so it runs at full speed from the first byte. The algorithm is fetched once ({@code
 * EVP_MD_fetch}), not looked up on every call.
 *
 * <p>{@code -Dlazypull.native-sha256=false} turns it off (to compare, or if a libcrypto
 * misbehaves).
 */
public final class NativeSha256 {
  private static final Logger LOG = Logger.getLogger(NativeSha256.class.getName());

  /** The fetched {@code EVP_MD} for SHA-256, or 0 when unavailable. */
  private static final long MD = load();

  private NativeSha256() {}

  /** Direct-mapped libcrypto entry points; registered only by {@link #load}. */
  private static final class Crypto {
    static native long EVP_MD_fetch(long libctx, byte[] algorithm, long properties);

    /** {@code int EVP_Digest(data, count, md, size, type, impl)}: 1 on success. */
    static native int EVP_Digest(long data, long count, byte[] md, long size, long type, long impl);

    static native long EVP_MD_CTX_new();

    static native void EVP_MD_CTX_free(long ctx);

    static native int EVP_DigestInit_ex(long ctx, long type, long impl);

    static native int EVP_DigestUpdate(long ctx, long data, long count);

    static native int EVP_DigestFinal_ex(long ctx, byte[] md, long size);
  }

  private static final Cleaner CLEANER =
      Cleaner.create(DaemonThreads.named("lazypull-sha256-cleaner"));

  /**
   * A running SHA-256 over direct buffers. Its libcrypto context is freed by {@link #digest} or
   * {@link #close}, or when it becomes unreachable (an abandoned pack).
   */
  public static final class Context implements AutoCloseable {
    /** Owns the native context; run once, by whichever comes first. */
    private static final class Free implements Runnable {
      private long ctx;

      Free(long ctx) {
        this.ctx = ctx;
      }

      @Override
      public synchronized void run() {
        if (ctx != 0) {
          Crypto.EVP_MD_CTX_free(ctx);
          ctx = 0;
        }
      }
    }

    private final long ctx;
    private final Cleaner.Cleanable cleanable;
    private boolean done;

    /**
     * @throws IllegalStateException when not {@link #available()}
     */
    public Context() {
      if (MD == 0) {
        throw new IllegalStateException("libcrypto SHA-256 is not available");
      }
      long c = Crypto.EVP_MD_CTX_new();
      if (c == 0) {
        throw new OutOfMemoryError("EVP_MD_CTX_new");
      }
      this.ctx = c;
      this.cleanable = CLEANER.register(this, new Free(c));
      if (Crypto.EVP_DigestInit_ex(c, MD, 0) != 1) {
        cleanable.clean();
        throw new IllegalStateException("libcrypto EVP_DigestInit_ex(SHA256) failed");
      }
    }

    /** Adds {@code data}'s remaining bytes (a direct buffer); its position does not move. */
    public void update(ByteBuffer data) {
      if (done) {
        throw new IllegalStateException("digest already taken");
      }
      if (Crypto.EVP_DigestUpdate(ctx, Posix.address(data), data.remaining()) != 1) {
        throw new IllegalStateException("libcrypto EVP_DigestUpdate failed");
      }
      Reference.reachabilityFence(this);
    }

    /** The digest of everything added; the context is freed. */
    public byte[] digest() {
      if (done) {
        throw new IllegalStateException("digest already taken");
      }
      done = true;
      byte[] out = new byte[32];
      try {
        if (Crypto.EVP_DigestFinal_ex(ctx, out, 0) != 1) {
          throw new IllegalStateException("libcrypto EVP_DigestFinal_ex failed");
        }
      } finally {
        cleanable.clean();
      }
      return out;
    }

    @Override
    public void close() {
      done = true;
      cleanable.clean();
    }
  }

  private static long load() {
    if (!Boolean.parseBoolean(System.getProperty("lazypull.native-sha256", "true"))) {
      return 0;
    }
    try {
      NativeLibrary lib;
      try {
        lib = NativeLibrary.getInstance("libcrypto.so.3");
      } catch (UnsatisfiedLinkError e) {
        lib = NativeLibrary.getInstance("crypto");
      }
      Native.register(Crypto.class, lib);
      long md = Crypto.EVP_MD_fetch(0, Posix.cString("SHA256"), 0);
      if (md == 0) {
        LOG.fine("libcrypto has no SHA256 implementation: using the JDK's");
        return 0;
      }
      // Known answer (FIPS 180-2, "abc"): a libcrypto that gets it wrong is never used.
      ByteBuffer abc = ByteBuffer.allocateDirect(3).put(new byte[] {'a', 'b', 'c'}).flip();
      byte[] got = new byte[32];
      if (Crypto.EVP_Digest(Posix.address(abc), 3, got, 0, md, 0) != 1
          || !HexFormat.of()
              .formatHex(got)
              .equals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")) {
        LOG.warning("libcrypto's SHA256 failed its known-answer check: using the JDK's");
        return 0;
      }
      return md;
    } catch (UnsatisfiedLinkError | RuntimeException e) {
      LOG.log(Level.FINE, "no usable libcrypto (" + e.getMessage() + "): the JDK's SHA-256", e);
      return 0;
    }
  }

  /** Whether {@link #digest} can be called. */
  public static boolean available() {
    return MD != 0;
  }

  /**
   * The SHA-256 of {@code data}'s remaining bytes (a direct buffer), without moving its position.
   *
   * @throws IllegalStateException when not {@link #available()} or libcrypto reports a failure
   */
  public static byte[] digest(ByteBuffer data) {
    if (MD == 0) {
      throw new IllegalStateException("libcrypto SHA-256 is not available");
    }
    byte[] out = new byte[32];
    if (Crypto.EVP_Digest(Posix.address(data), data.remaining(), out, 0, MD, 0) != 1) {
      throw new IllegalStateException("libcrypto EVP_Digest(SHA256) failed");
    }
    return out;
  }
}

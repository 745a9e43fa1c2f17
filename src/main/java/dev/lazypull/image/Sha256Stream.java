package dev.lazypull.image;

import dev.lazypull.sys.NativeSha256;
import java.nio.ByteBuffer;
import java.security.MessageDigest;

/**
 * A running SHA-256 of whole blobs as they are written (pack's data blobs, their uncompressed
 * devices): libcrypto's for direct buffers where it is available — full speed from a process's
 * first byte, where the JDK's runs as Java code for its first seconds — else the JDK's. Close it if
 * its digest is never taken.
 */
public final class Sha256Stream implements AutoCloseable {
  private final NativeSha256.Context ctx;
  private final MessageDigest jdk;

  public Sha256Stream() {
    this.ctx = NativeSha256.available() ? new NativeSha256.Context() : null;
    this.jdk = ctx == null ? Digest.sha256() : null;
  }

  /** Adds {@code data}'s remaining bytes; its position does not move. */
  public void update(ByteBuffer data) {
    if (ctx != null && data.isDirect()) {
      ctx.update(data);
    } else if (ctx != null) {
      ByteBuffer d = ByteBuffer.allocateDirect(data.remaining()).put(data.duplicate()).flip();
      ctx.update(d);
    } else {
      jdk.update(data.duplicate());
    }
  }

  /** The digest of everything added (once). */
  public byte[] digest() {
    return ctx != null ? ctx.digest() : jdk.digest();
  }

  @Override
  public void close() {
    if (ctx != null) {
      ctx.close();
    }
  }
}

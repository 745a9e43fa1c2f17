package dev.lazypull.compress;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdCompressCtx;
import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Compressed chunks of data blobs: one complete zstd frame per chunk, with the content size in its
 * header and no checksum (the chunk digest table's sha256 of the uncompressed bytes checks them).
 * Backed by zstd's own C library (zstd-jni; docs/benchmarks.md says why), so nothing here is a
 * hand-written codec.
 *
 * <p>Bounded: {@link #decompress} writes at most the declared size into the caller's buffer and
 * allocates nothing proportional to the input; a frame whose header declares another size, or no
 * size, is refused before a byte is decoded, so a decompression bomb or a lying header costs
 * nothing. Thread-safe: each thread uses its own native context (about 100 KiB for decompression).
 */
public final class ZstdCodec {
  /**
   * Default {@code --compression-level}: zstd's default, about 2:1 on binaries at several hundred
   * MB/s.
   */
  public static final int DEFAULT_LEVEL = 3;

  /** Levels zstd accepts: negative levels are faster; 20..22 need much memory to compress. */
  public static final int MIN_LEVEL = -7;

  public static final int MAX_LEVEL = 22;

  /** The zstd frame magic, little-endian (skippable frames have other magics and are refused). */
  public static final int FRAME_MAGIC = 0xFD2FB528;

  private static final ThreadLocal<ZstdDecompressCtx> DCTX =
      ThreadLocal.withInitial(ZstdDecompressCtx::new);

  private ZstdCodec() {}

  /**
   * The largest frame a chunk of {@code size} bytes may take: zstd's own bound ({@code
   * ZSTD_COMPRESSBOUND}: raw blocks plus headers) is at most {@code size + size/256 + 64}; this
   * adds some slack. Readers refuse any stored length above it (see {@code ChunkDigestTable}).
   */
  public static long maxFrameLength(long size) {
    return size + (size >>> 8) + 128;
  }

  /**
   * Decompresses the one zstd frame in {@code src}'s remaining bytes into {@code dst} at its
   * position, which then advances by {@code declaredSize}; {@code src} is consumed. {@code dst}
   * must be direct with at least {@code declaredSize} bytes remaining; {@code src} direct or
   * array-backed.
   *
   * @throws CorruptFrameException unless the input is exactly one zstd frame (no trailing bytes,
   *     not a skippable frame) whose header declares exactly {@code declaredSize} bytes, no longer
   *     than {@link #maxFrameLength}, that decodes without error to exactly {@code declaredSize}
   *     bytes. Nothing beyond {@code dst.position() + declaredSize} is ever written.
   */
  public static void decompress(ByteBuffer src, ByteBuffer dst, int declaredSize)
      throws CorruptFrameException {
    if (declaredSize < 0) {
      throw new IllegalArgumentException("declared size " + declaredSize);
    }
    if (!dst.isDirect()) {
      throw new IllegalArgumentException("the destination must be a direct buffer");
    }
    if (dst.remaining() < declaredSize) {
      throw new IllegalArgumentException(
          "destination has " + dst.remaining() + " bytes, " + declaredSize + " declared");
    }
    if (!src.isDirect() && !src.hasArray()) {
      throw new IllegalArgumentException("the source must be direct or array-backed");
    }
    int len = src.remaining();
    if (len < 6) {
      throw new CorruptFrameException("zstd frame of " + len + " bytes is truncated");
    }
    if (len > maxFrameLength(declaredSize)) {
      throw new CorruptFrameException(
          "zstd frame of "
              + len
              + " bytes for "
              + declaredSize
              + " bytes of data: longer than any frame of that size can be");
    }
    int magic = src.duplicate().order(ByteOrder.LITTLE_ENDIAN).getInt(src.position());
    if (magic != FRAME_MAGIC) {
      throw new CorruptFrameException(String.format("not a zstd frame (magic 0x%08x)", magic));
    }
    long contentSize;
    long frameSize;
    try {
      if (src.isDirect()) {
        contentSize = Zstd.getDirectByteBufferFrameContentSize(src, src.position(), len);
        frameSize = Zstd.findFrameCompressedSize(src.duplicate());
      } else {
        int off = src.arrayOffset() + src.position();
        contentSize = Zstd.getFrameContentSize(src.array(), off, len);
        frameSize = Zstd.findFrameCompressedSize(src.array(), off, len);
      }
    } catch (ZstdException e) {
      throw new CorruptFrameException("zstd frame header: " + e.getMessage());
    }
    if (contentSize != declaredSize) {
      throw new CorruptFrameException(
          "zstd frame declares "
              + describeSize(contentSize)
              + ", expected "
              + declaredSize
              + " bytes");
    }
    if (frameSize != len) {
      throw new CorruptFrameException(
          frameSize < 0 || frameSize > len
              ? "zstd frame is truncated (" + len + " bytes)"
              : "zstd frame of " + frameSize + " bytes followed by " + (len - frameSize) + " more");
    }
    int n;
    try {
      ZstdDecompressCtx ctx = DCTX.get();
      if (src.isDirect()) {
        n =
            ctx.decompressDirectByteBuffer(
                dst, dst.position(), declaredSize, src, src.position(), len);
      } else {
        n =
            ctx.decompressByteArrayToDirectByteBuffer(
                dst,
                dst.position(),
                declaredSize,
                src.array(),
                src.arrayOffset() + src.position(),
                len);
      }
    } catch (ZstdException e) {
      throw new CorruptFrameException("zstd frame does not decode: " + e.getMessage());
    } catch (RuntimeException e) { // zstd-jni reports some failures as plain RuntimeExceptions
      throw new CorruptFrameException("zstd frame does not decode: " + e.getMessage());
    }
    if (n != declaredSize) {
      throw new CorruptFrameException(
          "zstd frame decoded to " + n + " bytes, expected " + declaredSize);
    }
    src.position(src.limit());
    dst.position(dst.position() + declaredSize);
  }

  private static String describeSize(long contentSize) {
    if (contentSize == -1) {
      return "no content size";
    }
    if (contentSize < 0) {
      return "an invalid header";
    }
    return contentSize + " bytes";
  }

  /**
   * Makes the native library load now (it is extracted on first use), so start-up failures surface
   * early.
   */
  public static void load() {
    Zstd.compressBound(0);
  }

  /**
   * Compresses chunks into frames, one thread at a time (one per hashing thread): content size in
   * the header, no checksum, no dictionary id. The same bytes and level give the same frame on
   * every run, host and thread count (zstd is deterministic single-threaded), so images stay
   * reproducible.
   */
  public static final class Compressor implements AutoCloseable {
    private final ZstdCompressCtx ctx = new ZstdCompressCtx();
    private final int level;

    public Compressor(int level) {
      if (level < MIN_LEVEL || level > MAX_LEVEL || level == 0) {
        throw new IllegalArgumentException(
            "zstd level " + level + " (from " + MIN_LEVEL + " to " + MAX_LEVEL + ", not 0)");
      }
      this.level = level;
      ctx.setLevel(level);
      ctx.setContentSize(true);
      ctx.setChecksum(false);
      ctx.setDictID(false);
    }

    public int level() {
      return level;
    }

    /**
     * Compresses {@code src}'s remaining bytes into {@code dst} at its position (direct buffers,
     * {@code dst} with at least {@link #maxFrameLength}{@code (src.remaining())} bytes remaining);
     * both positions advance. Returns the frame length.
     */
    public int compress(ByteBuffer src, ByteBuffer dst) {
      if (!src.isDirect() || !dst.isDirect()) {
        throw new IllegalArgumentException("direct buffers only");
      }
      if (dst.remaining() < maxFrameLength(src.remaining())) {
        throw new IllegalArgumentException(
            "destination of " + dst.remaining() + " bytes for " + src.remaining() + " bytes");
      }
      int n =
          ctx.compressDirectByteBuffer(
              dst, dst.position(), dst.remaining(), src, src.position(), src.remaining());
      if (n <= 0 || n > maxFrameLength(src.remaining())) {
        throw new IllegalStateException("zstd produced " + n + " bytes for " + src.remaining());
      }
      src.position(src.limit());
      dst.position(dst.position() + n);
      return n;
    }

    @Override
    public void close() {
      ctx.close();
    }
  }
}

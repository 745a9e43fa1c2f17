package dev.lazypull.gzindex;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * lazypull's side table to a zinfo: what zinfo lacks to serve a layer safely — the layer's sizes
 * and digest, the digest of the zinfo it goes with, and per span the sha256 of its compressed
 * bytes, checked before any of the span's inflated bytes are used. Span {@code i} covers compressed
 * bytes {@code [firstByte(i), in(i+1))} (the last one runs to the end of the layer), so neighbours
 * share a byte when a checkpoint is inside one.
 *
 * <pre>
 *   magic "LPGZSPAN", u32 version 1, u32 span count, u64 span size, u64 compressed size, u64 uncompressed size,
 *   32-byte layer sha256, 32-byte zinfo sha256, then 32 bytes of sha256 per span      (little-endian; 104 + 32 n)
 * </pre>
 */
public record SpanTable(
    long spanSize,
    long compressedSize,
    long uncompressedSize,
    byte[] layerSha256,
    byte[] zinfoSha256,
    List<byte[]> spanDigests) {
  private static final byte[] MAGIC = "LPGZSPAN".getBytes(StandardCharsets.US_ASCII);
  public static final int HEADER_SIZE = 104;

  /** The smallest gzip member: 10-byte header, 2-byte empty deflate stream, 8-byte trailer. */
  static final long MIN_GZIP = 20;

  public SpanTable {
    spanDigests = List.copyOf(spanDigests);
  }

  /** The table for an index just built, with the digest of the zinfo written from it. */
  public static SpanTable of(GzipIndexer.Result r, byte[] zinfoSha256) {
    return new SpanTable(
        r.options().span(),
        r.compressedSize(),
        r.uncompressedSize(),
        r.sha256(),
        zinfoSha256,
        r.spanDigests());
  }

  public byte[] encode() {
    ByteBuffer b =
        ByteBuffer.allocate(HEADER_SIZE + 32 * spanDigests.size()).order(ByteOrder.LITTLE_ENDIAN);
    b.put(MAGIC)
        .putInt(1)
        .putInt(spanDigests.size())
        .putLong(spanSize)
        .putLong(compressedSize)
        .putLong(uncompressedSize)
        .put(layerSha256)
        .put(zinfoSha256);
    for (byte[] d : spanDigests) {
      b.put(d);
    }
    return b.array();
  }

  /**
   * Decodes strictly: exact length, version 1, one span at least, sizes that a gzip stream can
   * have.
   */
  public static SpanTable decode(byte[] bytes) throws IndexFormatException {
    if (bytes.length < HEADER_SIZE || !Arrays.equals(Arrays.copyOf(bytes, 8), MAGIC)) {
      throw new IndexFormatException("not a lazypull gzip span table (" + bytes.length + " bytes)");
    }
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    b.position(8);
    int version = b.getInt();
    long count = Integer.toUnsignedLong(b.getInt());
    long span = b.getLong();
    long compressed = b.getLong();
    long uncompressed = b.getLong();
    if (version != 1) {
      throw new IndexFormatException(
          "span table version " + version + " (this lazypull reads version 1)");
    }
    if (count == 0 || bytes.length != HEADER_SIZE + 32 * count) {
      throw new IndexFormatException(
          "span table of " + bytes.length + " bytes does not hold " + count + " spans");
    }
    if (span <= 0 || compressed < MIN_GZIP || uncompressed < 0) {
      throw new IndexFormatException(
          "span table sizes out of range: span "
              + span
              + ", compressed "
              + compressed
              + ", uncompressed "
              + uncompressed);
    }
    if (count > Zinfo.maxCheckpoints(compressed)) {
      throw new IndexFormatException(
          "span table claims " + count + " spans in " + compressed + " bytes");
    }
    byte[] layer = new byte[32];
    byte[] zinfo = new byte[32];
    b.get(layer).get(zinfo);
    List<byte[]> digests = new ArrayList<>((int) count);
    for (long i = 0; i < count; i++) {
      byte[] d = new byte[32];
      b.get(d);
      digests.add(d);
    }
    return new SpanTable(span, compressed, uncompressed, layer, zinfo, digests);
  }
}

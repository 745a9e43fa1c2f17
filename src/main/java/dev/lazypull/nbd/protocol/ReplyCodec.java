package dev.lazypull.nbd.protocol;

import java.nio.ByteBuffer;
import java.util.List;

/**
 * Transmission-phase replies: simple replies and structured reply chunks, written big-endian. Data
 * payloads are not copied here: callers put the header in front of data they already hold (see
 * {@link #putDataHeader}).
 */
public final class ReplyCodec {
  /** Header of an OFFSET_DATA chunk up to its data: chunk header + u64 offset. */
  public static final int DATA_CHUNK_PREFIX = Nbd.STRUCTURED_HEADER_SIZE + 8;

  private ReplyCodec() {}

  /** A run of the export with one status, for BLOCK_STATUS. */
  public record Extent(long length, int status) {}

  public static ByteBuffer putSimpleHeader(ByteBuffer dst, int error, long cookie) {
    return dst.putInt(Nbd.SIMPLE_REPLY_MAGIC).putInt(error).putLong(cookie);
  }

  public static ByteBuffer simple(int error, long cookie) {
    return putSimpleHeader(ByteBuffer.allocate(Nbd.SIMPLE_REPLY_SIZE), error, cookie).flip();
  }

  public static ByteBuffer putChunkHeader(
      ByteBuffer dst, int flags, int type, long cookie, int length) {
    return dst.putInt(Nbd.STRUCTURED_REPLY_MAGIC)
        .putShort((short) flags)
        .putShort((short) type)
        .putLong(cookie)
        .putInt(length);
  }

  /**
   * The first {@link #DATA_CHUNK_PREFIX} bytes of an OFFSET_DATA chunk carrying {@code dataLength}
   * bytes.
   */
  public static ByteBuffer putDataHeader(
      ByteBuffer dst, long cookie, long offset, int dataLength, boolean done) {
    if (dataLength <= 0 || dataLength > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("OFFSET_DATA of " + dataLength + " bytes");
    }
    return putChunkHeader(
            dst, done ? Nbd.REPLY_FLAG_DONE : 0, Nbd.REPLY_TYPE_OFFSET_DATA, cookie, dataLength + 8)
        .putLong(offset);
  }

  public static ByteBuffer none(long cookie) {
    return putChunkHeader(
            ByteBuffer.allocate(Nbd.STRUCTURED_HEADER_SIZE),
            Nbd.REPLY_FLAG_DONE,
            Nbd.REPLY_TYPE_NONE,
            cookie,
            0)
        .flip();
  }

  public static ByteBuffer hole(long cookie, long offset, int size, boolean done) {
    if (size <= 0) {
      throw new IllegalArgumentException("OFFSET_HOLE of " + size + " bytes");
    }
    return putChunkHeader(
            ByteBuffer.allocate(Nbd.STRUCTURED_HEADER_SIZE + 12),
            done ? Nbd.REPLY_FLAG_DONE : 0,
            Nbd.REPLY_TYPE_OFFSET_HOLE,
            cookie,
            12)
        .putLong(offset)
        .putInt(size)
        .flip();
  }

  /** An ERROR chunk, always final. */
  public static ByteBuffer error(long cookie, int error, String message) {
    byte[] msg = message(message);
    return putChunkHeader(
            ByteBuffer.allocate(Nbd.STRUCTURED_HEADER_SIZE + 6 + msg.length),
            Nbd.REPLY_FLAG_DONE,
            Nbd.REPLY_TYPE_ERROR,
            cookie,
            6 + msg.length)
        .putInt(error)
        .putShort((short) msg.length)
        .put(msg)
        .flip();
  }

  /** An ERROR_OFFSET chunk (a READ failed at {@code offset}), always final here. */
  public static ByteBuffer errorOffset(long cookie, int error, String message, long offset) {
    byte[] msg = message(message);
    return putChunkHeader(
            ByteBuffer.allocate(Nbd.STRUCTURED_HEADER_SIZE + 14 + msg.length),
            Nbd.REPLY_FLAG_DONE,
            Nbd.REPLY_TYPE_ERROR_OFFSET,
            cookie,
            14 + msg.length)
        .putInt(error)
        .putShort((short) msg.length)
        .put(msg)
        .putLong(offset)
        .flip();
  }

  /**
   * One BLOCK_STATUS chunk for context {@code contextId}: {@code u32 id, {u32 length, u32
   * status}...}.
   */
  public static ByteBuffer blockStatus(
      long cookie, int contextId, List<Extent> extents, boolean done) {
    if (extents.isEmpty()) {
      throw new IllegalArgumentException("BLOCK_STATUS needs at least one extent");
    }
    int len = 4 + 8 * extents.size();
    ByteBuffer b =
        putChunkHeader(
                ByteBuffer.allocate(Nbd.STRUCTURED_HEADER_SIZE + len),
                done ? Nbd.REPLY_FLAG_DONE : 0,
                Nbd.REPLY_TYPE_BLOCK_STATUS,
                cookie,
                len)
            .putInt(contextId);
    for (Extent e : extents) {
      if (e.length() <= 0 || e.length() > 0xFFFFFFFFL) {
        throw new IllegalArgumentException("extent of " + e.length() + " bytes");
      }
      b.putInt((int) e.length()).putInt(e.status());
    }
    return b.flip();
  }

  private static byte[] message(String message) {
    return OptionCodec.boundedUtf8(message, OptionCodec.MAX_MESSAGE);
  }
}

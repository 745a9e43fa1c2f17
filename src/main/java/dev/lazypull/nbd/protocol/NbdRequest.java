package dev.lazypull.nbd.protocol;

import java.nio.ByteBuffer;

/**
 * One transmission-phase request header (28 bytes): {@code magic, u16 flags, u16 type, u64 cookie,
 * u64 offset, u32 length}. A WRITE's payload follows it on the wire; the decoder hands it over in
 * {@code payload} when the export takes writes.
 *
 * @param flags the command flags, a field of their own: they never change which command {@code
 *     type} names
 * @param offset unsigned on the wire; a value with the top bit set is negative here and out of any
 *     export
 * @param length unsigned 32-bit
 * @param payload a WRITE's data ({@code length} bytes remaining), or null: no payload, or one that
 *     was skipped (a read-only export). The receiver owns it and gives it back to the buffers it
 *     came from once done
 */
public record NbdRequest(
    int flags, int type, long cookie, long offset, long length, ByteBuffer payload) {
  /** A request without a payload. */
  public NbdRequest(int flags, int type, long cookie, long offset, long length) {
    this(flags, type, cookie, offset, length, null);
  }

  /**
   * Decodes a header; a wrong magic means the stream is out of step and the connection must end.
   */
  public static NbdRequest decode(ByteBuffer buf) throws NbdProtocolException {
    int magic = buf.getInt();
    if (magic != Nbd.REQUEST_MAGIC) {
      throw new NbdProtocolException("bad request magic 0x" + Integer.toHexString(magic));
    }
    int flags = Short.toUnsignedInt(buf.getShort());
    int type = Short.toUnsignedInt(buf.getShort());
    long cookie = buf.getLong();
    long offset = buf.getLong();
    long length = Integer.toUnsignedLong(buf.getInt());
    return new NbdRequest(flags, type, cookie, offset, length);
  }

  /** Encodes a header (for clients and tests); a payload is not included. */
  public ByteBuffer encode() {
    return ByteBuffer.allocate(Nbd.REQUEST_SIZE)
        .putInt(Nbd.REQUEST_MAGIC)
        .putShort((short) flags)
        .putShort((short) type)
        .putLong(cookie)
        .putLong(offset)
        .putInt((int) length)
        .flip();
  }

  /** This request carrying {@code data} as its payload. */
  public NbdRequest withPayload(ByteBuffer data) {
    return new NbdRequest(flags, type, cookie, offset, length, data);
  }

  /** Whether command flag {@code flag} is set. */
  public boolean has(int flag) {
    return (flags & flag) != 0;
  }

  /** Whether {@code [offset, offset+length)} lies inside an export of {@code size} bytes. */
  public boolean within(long size) {
    return offset >= 0 && offset <= size && length <= size - offset;
  }

  @Override
  public String toString() {
    return Nbd.commandName(type)
        + " "
        + Long.toUnsignedString(offset)
        + "+"
        + length
        + (flags != 0 ? " flags 0x" + Integer.toHexString(flags) : "");
  }
}

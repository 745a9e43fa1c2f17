package dev.lazypull.nbd.protocol;

import java.nio.ByteBuffer;

/**
 * One transmission-phase request header (28 bytes): {@code magic, u16 flags, u16 type, u64 cookie, u64 offset,
 * u32 length}. A WRITE's payload follows it on the wire.
 *
 * @param offset unsigned on the wire; a value with the top bit set is negative here and out of any export
 * @param length unsigned 32-bit
 */
public record NbdRequest(int flags, int type, long cookie, long offset, long length) {
  /** Decodes a header; a wrong magic means the stream is out of step and the connection must end. */
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

  /** Encodes a header (for clients and tests). */
  public ByteBuffer encode() {
    return ByteBuffer.allocate(Nbd.REQUEST_SIZE).putInt(Nbd.REQUEST_MAGIC).putShort((short) flags)
        .putShort((short) type).putLong(cookie).putLong(offset).putInt((int) length).flip();
  }

  /** Whether {@code [offset, offset+length)} lies inside an export of {@code size} bytes. */
  public boolean within(long size) {
    return offset >= 0 && offset <= size && length <= size - offset;
  }

  @Override
  public String toString() {
    return Nbd.commandName(type) + " " + Long.toUnsignedString(offset) + "+" + length
        + (flags != 0 ? " flags 0x" + Integer.toHexString(flags) : "");
  }
}

package dev.lazypull.fscache;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Decodes {@code struct cachefiles_msg} from the bytes one read(2) returned. Pure: no I/O, never
 * throws on bad input — malformed bytes become {@link CachefilesMsg.Malformed} so the caller can
 * still answer the kernel.
 *
 * <p>Layout (native byte order): header {@code u32 msg_id, u32 opcode, u32 len, u32 object_id};
 * OPEN adds {@code u32 volume_key_size (incl. NUL), u32 cookie_key_size (no NUL), u32 fd, u32
 * flags, volume key, cookie key}; READ adds {@code u64 off, u64 len}; CLOSE adds nothing.
 */
public final class CachefilesDecoder {
  /**
   * CACHEFILES_MSG_MAX_SIZE: the kernel never sends more; use a read buffer at least this large.
   */
  public static final int MSG_MAX_SIZE = 1024;

  static final int HEADER_SIZE = 16;
  static final int OPEN_FIXED_SIZE = HEADER_SIZE + 16;
  static final int READ_SIZE = HEADER_SIZE + 16;

  private CachefilesDecoder() {}

  /**
   * Decodes {@code length} bytes starting at {@code buf}'s position (the buffer's order is
   * ignored).
   */
  public static CachefilesMsg decode(ByteBuffer buf, int length) {
    ByteBuffer b = buf.duplicate().order(ByteOrder.nativeOrder());
    int base = b.position();
    if (length < HEADER_SIZE || length > b.remaining()) {
      return new CachefilesMsg.Malformed(-1, -1, -1, -1, "truncated message: " + length + " bytes");
    }
    int msgId = b.getInt(base);
    int opcode = b.getInt(base + 4);
    long declaredLen = Integer.toUnsignedLong(b.getInt(base + 8));
    int objectId = b.getInt(base + 12);
    if (declaredLen != length) {
      int fd =
          opcode == CachefilesMsg.OPCODE_OPEN && length >= OPEN_FIXED_SIZE
              ? b.getInt(base + 24)
              : -1;
      return new CachefilesMsg.Malformed(
          msgId,
          objectId,
          opcode,
          fd,
          "header says " + declaredLen + " bytes but read returned " + length);
    }
    switch (opcode) {
      case CachefilesMsg.OPCODE_OPEN:
        return decodeOpen(b, base, length, msgId, objectId);
      case CachefilesMsg.OPCODE_READ:
        if (length != READ_SIZE) {
          return new CachefilesMsg.Malformed(
              msgId, objectId, opcode, -1, "READ of " + length + " bytes");
        }
        return new CachefilesMsg.Read(msgId, objectId, b.getLong(base + 16), b.getLong(base + 24));
      case CachefilesMsg.OPCODE_CLOSE:
        if (length != HEADER_SIZE) {
          return new CachefilesMsg.Malformed(
              msgId, objectId, opcode, -1, "CLOSE of " + length + " bytes");
        }
        return new CachefilesMsg.Close(msgId, objectId);
      default:
        return new CachefilesMsg.Malformed(msgId, objectId, opcode, -1, "unknown opcode " + opcode);
    }
  }

  private static CachefilesMsg decodeOpen(
      ByteBuffer b, int base, int length, int msgId, int objectId) {
    if (length < OPEN_FIXED_SIZE) {
      return new CachefilesMsg.Malformed(
          msgId, objectId, CachefilesMsg.OPCODE_OPEN, -1, "OPEN of " + length + " bytes");
    }
    long volumeKeySize = Integer.toUnsignedLong(b.getInt(base + 16));
    long cookieKeySize = Integer.toUnsignedLong(b.getInt(base + 20));
    int fd = b.getInt(base + 24);
    int flags = b.getInt(base + 28);
    if (OPEN_FIXED_SIZE + volumeKeySize + cookieKeySize != length) {
      return new CachefilesMsg.Malformed(
          msgId,
          objectId,
          CachefilesMsg.OPCODE_OPEN,
          fd,
          "OPEN key sizes "
              + volumeKeySize
              + "+"
              + cookieKeySize
              + " do not match length "
              + length);
    }
    if (volumeKeySize == 0 || b.get(base + OPEN_FIXED_SIZE + (int) volumeKeySize - 1) != 0) {
      return new CachefilesMsg.Malformed(
          msgId, objectId, CachefilesMsg.OPCODE_OPEN, fd, "OPEN volume key is not NUL-terminated");
    }
    if (cookieKeySize == 0) {
      return new CachefilesMsg.Malformed(
          msgId, objectId, CachefilesMsg.OPCODE_OPEN, fd, "OPEN with empty cookie key");
    }
    byte[] volume = new byte[(int) volumeKeySize - 1];
    b.get(base + OPEN_FIXED_SIZE, volume);
    for (byte c : volume) {
      if (c == 0) {
        return new CachefilesMsg.Malformed(
            msgId, objectId, CachefilesMsg.OPCODE_OPEN, fd, "OPEN volume key contains a NUL byte");
      }
    }
    byte[] cookie = new byte[(int) cookieKeySize];
    b.get(base + OPEN_FIXED_SIZE + (int) volumeKeySize, cookie);
    if (fd < 0) {
      return new CachefilesMsg.Malformed(
          msgId, objectId, CachefilesMsg.OPCODE_OPEN, -1, "OPEN with fd " + fd);
    }
    return new CachefilesMsg.Open(
        msgId,
        objectId,
        new String(volume, StandardCharsets.ISO_8859_1),
        new String(cookie, StandardCharsets.ISO_8859_1),
        fd,
        flags);
  }
}

package dev.lazypull.erofs;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Inline extended attributes (erofs-format §3.1): a 12-byte header then entries {u8 name_len, u8
 * name_index, u16 value_size, name suffix, value}, each padded to 4 bytes. Names are stored as a
 * prefix index plus suffix; only the kernel's built-in prefixes exist in this format (no
 * long-prefix table), so other namespaces are rejected.
 */
public final class XattrCodec {
  public static final int HEADER_SIZE = 12;
  private static final String[] PREFIXES = {
    null,
    "user.",
    "system.posix_acl_access",
    "system.posix_acl_default",
    "trusted.",
    null,
    "security."
  };

  private XattrCodec() {}

  /** The inline area size for these xattrs (0 when none). */
  public static int areaSize(Map<String, byte[]> xattrs) throws ErofsFormatException {
    if (xattrs.isEmpty()) {
      return 0;
    }
    int size = HEADER_SIZE;
    for (Map.Entry<String, byte[]> e : xattrs.entrySet()) {
      size += entrySize(split(e.getKey()).suffix.length, e.getValue().length);
    }
    return size;
  }

  private static int entrySize(int nameLen, int valueLen) {
    return (4 + nameLen + valueLen + 3) & ~3;
  }

  /** i_xattr_icount for an area of this size. */
  public static int icount(int areaSize) {
    return areaSize == 0 ? 0 : (areaSize - HEADER_SIZE) / 4 + 1;
  }

  private record Split(int index, byte[] suffix) {}

  private static Split split(String name) throws ErofsFormatException {
    for (int i = 1; i < PREFIXES.length; i++) {
      String p = PREFIXES[i];
      if (p != null && name.startsWith(p)) {
        byte[] suffix = name.substring(p.length()).getBytes(StandardCharsets.UTF_8);
        boolean acl = i == 2 || i == 3;
        if (acl ? suffix.length != 0 : suffix.length == 0) {
          continue;
        }
        if (suffix.length > 255) {
          throw new ErofsFormatException("xattr name too long: " + name);
        }
        return new Split(i, suffix);
      }
    }
    throw new ErofsFormatException(
        "xattr '"
            + name
            + "' is in a namespace EROFS cannot store (only user., "
            + "trusted., security. and POSIX ACLs)");
  }

  /** Writes the area ({@link #areaSize} bytes) at {@code offset}, entries in map order. */
  public static void encode(Map<String, byte[]> xattrs, ByteBuffer buf, int offset)
      throws ErofsFormatException {
    if (xattrs.isEmpty()) {
      return;
    }
    ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < HEADER_SIZE; i++) {
      b.put(offset + i, (byte) 0);
    }
    int pos = offset + HEADER_SIZE;
    for (Map.Entry<String, byte[]> e : xattrs.entrySet()) {
      Split s = split(e.getKey());
      byte[] v = e.getValue();
      int size = entrySize(s.suffix.length, v.length);
      for (int i = 0; i < size; i++) {
        b.put(pos + i, (byte) 0);
      }
      b.put(pos, (byte) s.suffix.length);
      b.put(pos + 1, (byte) s.index);
      b.putShort(pos + 2, (short) v.length);
      b.put(pos + 4, s.suffix);
      b.put(pos + 4 + s.suffix.length, v);
      pos += size;
    }
  }

  /**
   * Decodes an inline area of {@code areaSize} bytes. Shared xattrs (ids in the header) are
   * resolved through {@code shared}, which reads one entry at a shared id; it may be null when
   * there are none.
   */
  public static Map<String, byte[]> decode(
      ByteBuffer buf, int offset, int areaSize, SharedReader shared) throws ErofsFormatException {
    Map<String, byte[]> out = new LinkedHashMap<>();
    if (areaSize == 0) {
      return out;
    }
    ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int sharedCount = b.get(offset + 4) & 0xff;
    int pos = offset + HEADER_SIZE;
    int end = offset + areaSize;
    List<Long> ids = new ArrayList<>();
    for (int i = 0; i < sharedCount; i++) {
      if (pos + 4 > end) {
        throw new ErofsFormatException("shared xattr ids overrun the xattr area");
      }
      ids.add(Integer.toUnsignedLong(b.getInt(pos)));
      pos += 4;
    }
    for (long id : ids) {
      if (shared == null) {
        throw new ErofsFormatException("shared xattr id " + id + " without a shared xattr area");
      }
      Map.Entry<String, byte[]> e = shared.read(id);
      out.put(e.getKey(), e.getValue());
    }
    while (pos < end) {
      if (pos + 4 > end) {
        throw new ErofsFormatException("xattr entry header overruns the xattr area");
      }
      Map.Entry<String, byte[]> e = decodeEntry(b, pos, end);
      out.put(e.getKey(), e.getValue());
      pos += entrySize(b.get(pos) & 0xff, b.getShort(pos + 2) & 0xffff);
    }
    return out;
  }

  /** Decodes one entry at {@code pos} that must end by {@code end}. */
  public static Map.Entry<String, byte[]> decodeEntry(ByteBuffer b, int pos, int end)
      throws ErofsFormatException {
    int nameLen = b.get(pos) & 0xff;
    int index = b.get(pos + 1) & 0xff;
    int valueLen = b.getShort(pos + 2) & 0xffff;
    if (pos + 4 + nameLen + valueLen > end) {
      throw new ErofsFormatException("xattr entry overruns its area");
    }
    if (index >= PREFIXES.length || PREFIXES[index] == null) {
      throw new ErofsFormatException("unknown xattr name index " + index);
    }
    byte[] suffix = new byte[nameLen];
    b.get(pos + 4, suffix);
    byte[] value = new byte[valueLen];
    b.get(pos + 4 + nameLen, value);
    return Map.entry(PREFIXES[index] + new String(suffix, StandardCharsets.UTF_8), value);
  }

  /** Reads a shared xattr entry by id (offset xattr_blkaddr * blksz + id * 4). */
  public interface SharedReader {
    Map.Entry<String, byte[]> read(long id) throws ErofsFormatException;
  }
}

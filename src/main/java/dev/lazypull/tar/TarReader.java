package dev.lazypull.tar;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A streaming tar reader: ustar, POSIX pax (local and global extended headers: path, linkpath,
 * size, uid, gid, mtime with fractions, {@code SCHILY.xattr.*}) and GNU (long names 'L'/'K',
 * base-256 numbers).
 *
 * <p>Every header is checked: checksum (unsigned, or the historic signed sum), octal/base-256
 * fields, sizes, pax record syntax. Sparse members, multi-volume members and unknown types are
 * rejected, as are paths with "..". Bounded: extended headers and long names are capped at 1 MiB.
 * End of input exactly at a header boundary ends the archive (some writers omit the two zero
 * blocks); anywhere else it is a truncation error.
 *
 * <p>Use: {@link #next} returns the next member; read its data from {@link #data} before calling
 * next again (unread data is skipped).
 */
public final class TarReader {
  private static final int BLOCK = 512;
  private static final int MAX_META = 1 << 20;

  private final InputStream in;
  private final String what;
  private final byte[] header = new byte[BLOCK];
  private final Map<String, byte[]> globalPax = new HashMap<>();
  private long remaining;
  private long padding;
  private long offset;

  public TarReader(InputStream in, String what) {
    this.in = in;
    this.what = what;
  }

  /** The next member, or null at the end of the archive. */
  public TarEntry next() throws IOException {
    skipRest();
    Map<String, byte[]> pax = new HashMap<>(globalPax);
    byte[] longName = null;
    byte[] longLink = null;
    while (true) {
      long at = offset;
      if (!readHeader()) {
        return null;
      }
      char type = (char) (header[156] & 0xff);
      long size = number(124, 12, "size", at);
      if (size < 0) {
        throw error(at, "negative size");
      }
      switch (type) {
        case 'x':
          parsePax(readMeta(size, at), pax, at);
          continue;
        case 'g':
          parsePax(readMeta(size, at), globalPax, at);
          pax.putAll(globalPax);
          continue;
        case 'L':
          longName = cString(readMeta(size, at));
          continue;
        case 'K':
          longLink = cString(readMeta(size, at));
          continue;
        default:
          return entry(type, size, pax, longName, longLink, at);
      }
    }
  }

  /**
   * How many bytes of the archive have been consumed: right after {@link #next} returned a regular
   * file, the offset of its first data byte in the archive (what a side-car index records).
   */
  public long position() {
    return offset;
  }

  /** The current member's data (exactly its size; not to be used after {@link #next}). */
  public InputStream data() {
    return new InputStream() {
      @Override
      public int read() throws IOException {
        byte[] one = new byte[1];
        return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
      }

      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        if (remaining == 0) {
          return -1;
        }
        int n = in.read(b, off, (int) Math.min(len, remaining));
        if (n < 0) {
          throw new EOFException(
              what + ": archive truncated inside a member (" + remaining + " bytes missing)");
        }
        remaining -= n;
        offset += n;
        return n;
      }
    };
  }

  private TarEntry entry(
      char type, long size, Map<String, byte[]> pax, byte[] longName, byte[] longLink, long at)
      throws IOException {
    TarEntry.Type t;
    switch (type) {
      case '0':
      case '\0':
      case '7':
        t = TarEntry.Type.REGULAR;
        break;
      case '1':
        t = TarEntry.Type.HARDLINK;
        break;
      case '2':
        t = TarEntry.Type.SYMLINK;
        break;
      case '3':
        t = TarEntry.Type.CHAR_DEVICE;
        break;
      case '4':
        t = TarEntry.Type.BLOCK_DEVICE;
        break;
      case '5':
        t = TarEntry.Type.DIRECTORY;
        break;
      case '6':
        t = TarEntry.Type.FIFO;
        break;
      case 'S':
        throw error(at, "GNU sparse members are not supported");
      default:
        throw error(at, "unsupported member type '" + printable(type) + "'");
    }
    for (String k : pax.keySet()) {
      if (k.startsWith("GNU.sparse.")) {
        throw error(at, "pax sparse members are not supported");
      }
    }
    boolean ustar =
        Arrays.equals(
            Arrays.copyOfRange(header, 257, 263), "ustar\0".getBytes(StandardCharsets.US_ASCII));
    byte[] name = field(0, 100);
    if (ustar && header[345] != 0) {
      byte[] prefix = field(345, 155);
      byte[] joined = new byte[prefix.length + 1 + name.length];
      System.arraycopy(prefix, 0, joined, 0, prefix.length);
      joined[prefix.length] = '/';
      System.arraycopy(name, 0, joined, prefix.length + 1, name.length);
      name = joined;
    }
    if (longName != null) {
      name = longName;
    }
    if (pax.containsKey("path")) {
      name = pax.get("path");
    }
    byte[] link = field(157, 100);
    if (longLink != null) {
      link = longLink;
    }
    if (pax.containsKey("linkpath")) {
      link = pax.get("linkpath");
    }
    if (pax.containsKey("size")) {
      size = paxNumber(pax, "size", at);
    }
    long uid = pax.containsKey("uid") ? paxNumber(pax, "uid", at) : number(108, 8, "uid", at);
    long gid = pax.containsKey("gid") ? paxNumber(pax, "gid", at) : number(116, 8, "gid", at);
    long mtime = number(136, 12, "mtime", at);
    int nsec = 0;
    if (pax.containsKey("mtime")) {
      String v = new String(pax.get("mtime"), StandardCharsets.US_ASCII);
      try {
        BigDecimal d = new BigDecimal(v);
        mtime = d.setScale(0, RoundingMode.FLOOR).longValueExact();
        nsec = d.subtract(BigDecimal.valueOf(mtime)).movePointRight(9).intValue();
      } catch (NumberFormatException | ArithmeticException e) {
        throw error(at, "bad pax mtime '" + v + "'");
      }
    }
    int mode = (int) (number(100, 8, "mode", at) & 07777);
    long major = 0;
    long minor = 0;
    if (t == TarEntry.Type.CHAR_DEVICE || t == TarEntry.Type.BLOCK_DEVICE) {
      major = number(329, 8, "devmajor", at);
      minor = number(337, 8, "devminor", at);
    }
    if (uid < 0 || gid < 0 || uid > 0xFFFFFFFFL || gid > 0xFFFFFFFFL) {
      throw error(at, "uid/gid out of range");
    }
    Map<String, byte[]> xattrs = new LinkedHashMap<>();
    pax.keySet().stream()
        .sorted()
        .forEach(
            k -> {
              if (k.startsWith("SCHILY.xattr.")) {
                xattrs.put(k.substring("SCHILY.xattr.".length()), pax.get(k));
              }
            });
    if (name.length == 0) {
      throw error(at, "member with an empty name");
    }
    List<byte[]> path = TarPaths.split(name);
    byte[] target = null;
    if (t == TarEntry.Type.SYMLINK) {
      if (link.length == 0) {
        throw error(at, "symlink " + TarPaths.show(name) + " without a target");
      }
      target = link;
    } else if (t == TarEntry.Type.HARDLINK) {
      target = TarPaths.join(TarPaths.split(link));
      if (target.length == 0) {
        throw error(at, "hard link " + TarPaths.show(name) + " to the archive root");
      }
    }
    // Data follows regular members; hard links and others may declare a size too (skipped).
    remaining = size;
    padding = (BLOCK - size % BLOCK) % BLOCK;
    long dataSize = t == TarEntry.Type.REGULAR ? size : 0;
    if (t != TarEntry.Type.REGULAR
        && t != TarEntry.Type.HARDLINK
        && size != 0
        && t != TarEntry.Type.DIRECTORY) {
      throw error(
          at,
          "member " + TarPaths.show(name) + " of type " + t + " declares " + size + " data bytes");
    }
    if (t != TarEntry.Type.REGULAR) {
      skipRest();
    }
    return new TarEntry(
        path, t, mode, uid, gid, mtime, nsec, dataSize, target, major, minor, xattrs);
  }

  /** Reads the next header block; false at the end of the archive. */
  private boolean readHeader() throws IOException {
    long at = offset;
    int n = in.readNBytes(header, 0, BLOCK);
    offset += n;
    if (n == 0) {
      return false;
    }
    if (n < BLOCK) {
      throw error(at, "archive truncated inside a header");
    }
    if (allZero(header)) {
      return false; // end-of-archive marker (a second zero block may follow; the rest is not read)
    }
    long stored = number(148, 8, "checksum", at);
    long unsigned = 0;
    long signed = 0;
    for (int i = 0; i < BLOCK; i++) {
      int b = (i >= 148 && i < 156) ? ' ' : header[i];
      unsigned += b & 0xff;
      signed += b;
    }
    if (stored != unsigned && stored != signed) {
      throw error(at, "header checksum mismatch (not a tar archive, or corrupt)");
    }
    return true;
  }

  private byte[] readMeta(long size, long at) throws IOException {
    if (size > MAX_META) {
      throw error(at, "extended header of " + size + " bytes (max " + MAX_META + ")");
    }
    byte[] data = in.readNBytes((int) size);
    offset += data.length;
    if (data.length < size) {
      throw error(at, "archive truncated inside an extended header");
    }
    remaining = 0;
    padding = (BLOCK - size % BLOCK) % BLOCK;
    skipRest();
    return data;
  }

  private void skipRest() throws IOException {
    long n = remaining + padding;
    while (n > 0) {
      long s = in.skip(n);
      if (s <= 0) {
        if (in.read() < 0) {
          throw new EOFException(what + ": archive truncated at byte " + offset);
        }
        s = 1;
      }
      n -= s;
      offset += s;
    }
    remaining = 0;
    padding = 0;
  }

  private void parsePax(byte[] data, Map<String, byte[]> into, long at) throws TarFormatException {
    int pos = 0;
    while (pos < data.length) {
      int sp = pos;
      while (sp < data.length && data[sp] >= '0' && data[sp] <= '9' && sp - pos < 8) {
        sp++;
      }
      if (sp == pos || sp >= data.length || data[sp] != ' ') {
        throw error(at, "malformed pax record at " + pos);
      }
      int len = Integer.parseInt(new String(data, pos, sp - pos, StandardCharsets.US_ASCII));
      int end = pos + len;
      if (len <= sp - pos + 1 || end > data.length || data[end - 1] != '\n') {
        throw error(at, "malformed pax record length at " + pos);
      }
      int eq = sp + 1;
      while (eq < end - 1 && data[eq] != '=') {
        eq++;
      }
      if (eq >= end - 1 || eq == sp + 1) {
        throw error(at, "pax record without key=value at " + pos);
      }
      String key = new String(data, sp + 1, eq - sp - 1, StandardCharsets.UTF_8);
      byte[] value = Arrays.copyOfRange(data, eq + 1, end - 1);
      if (value.length == 0) {
        into.remove(key); // an empty value deletes the keyword
      } else {
        into.put(key, value);
      }
      pos = end;
    }
  }

  private long paxNumber(Map<String, byte[]> pax, String key, long at) throws TarFormatException {
    String v = new String(pax.get(key), StandardCharsets.US_ASCII);
    try {
      long n = Long.parseLong(v);
      if (n < 0) {
        throw new NumberFormatException();
      }
      return n;
    } catch (NumberFormatException e) {
      throw error(at, "bad pax " + key + " '" + v + "'");
    }
  }

  /** An octal (or GNU base-256) numeric field. */
  private long number(int off, int len, String name, long at) throws TarFormatException {
    if ((header[off] & 0x80) != 0) {
      if ((header[off] & 0x40) != 0) {
        throw error(at, name + " is negative");
      }
      long v = header[off] & 0x3f;
      for (int i = 1; i < len; i++) {
        if (v > (Long.MAX_VALUE >> 8)) {
          throw error(at, name + " overflows");
        }
        v = (v << 8) | (header[off + i] & 0xff);
      }
      return v;
    }
    int i = off;
    int end = off + len;
    while (i < end && (header[i] == ' ' || header[i] == 0)) {
      i++;
    }
    long v = 0;
    int digits = 0;
    while (i < end && header[i] >= '0' && header[i] <= '7') {
      v = v * 8 + (header[i] - '0');
      i++;
      digits++;
    }
    while (i < end) {
      if (header[i] != ' ' && header[i] != 0) {
        throw error(
            at,
            "bad "
                + name
                + " field '"
                + printable(new String(header, off, len, StandardCharsets.ISO_8859_1))
                + "'");
      }
      i++;
    }
    if (digits > 21) {
      throw error(at, name + " overflows");
    }
    return v;
  }

  private byte[] field(int off, int len) {
    int end = off;
    while (end < off + len && header[end] != 0) {
      end++;
    }
    return Arrays.copyOfRange(header, off, end);
  }

  private static byte[] cString(byte[] b) {
    int end = 0;
    while (end < b.length && b[end] != 0) {
      end++;
    }
    return Arrays.copyOf(b, end);
  }

  private static boolean allZero(byte[] b) {
    for (byte x : b) {
      if (x != 0) {
        return false;
      }
    }
    return true;
  }

  private static String printable(Object o) {
    StringBuilder sb = new StringBuilder();
    for (char c : o.toString().toCharArray()) {
      sb.append(c >= 32 && c < 127 ? String.valueOf(c) : String.format("\\x%02x", (int) c));
    }
    return sb.toString();
  }

  private TarFormatException error(long at, String message) {
    return new TarFormatException(what + ": tar header at byte " + at + ": " + message);
  }
}

package dev.lazypull.erofs;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Directory data (erofs-format §5): entries sorted bytewise across the whole directory ("." and
 * ".." included), packed into self-contained blocks of {dirent array, names}; an entry that would
 * overflow a block starts the next one. The last block holds only its used bytes (that is the
 * directory's i_size).
 */
public final class DirBlocks {
  public static final int DIRENT_SIZE = 12;
  public static final int MAX_NAME = 255;
  public static final Comparator<byte[]> NAME_ORDER = Arrays::compareUnsigned;

  /** One directory entry. */
  public record Entry(byte[] name, long nid, int fileType) {}

  private DirBlocks() {}

  /**
   * The size in bytes of a directory with these names (sorted, "." and ".." included): full blocks
   * plus the used bytes of the last one.
   */
  public static long size(List<byte[]> sortedNames, int blockSize) {
    long full = 0;
    int used = 0;
    for (byte[] n : sortedNames) {
      int cost = DIRENT_SIZE + n.length;
      if (used + cost > blockSize) {
        full++;
        used = 0;
      }
      used += cost;
    }
    return full * blockSize + used;
  }

  /**
   * Encodes the directory data ({@link #size} bytes); entries must be sorted by {@link
   * #NAME_ORDER}.
   */
  public static byte[] encode(List<Entry> sorted, int blockSize) {
    List<byte[]> names = new ArrayList<>(sorted.size());
    for (Entry e : sorted) {
      if (e.name.length == 0 || e.name.length > MAX_NAME) {
        throw new IllegalArgumentException("directory entry name of " + e.name.length + " bytes");
      }
      names.add(e.name);
    }
    long total = size(names, blockSize);
    byte[] out = new byte[Math.toIntExact(total)];
    ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
    int i = 0;
    int blockStart = 0;
    while (i < sorted.size()) {
      int n = 0;
      int used = 0;
      while (i + n < sorted.size()
          && used + DIRENT_SIZE + sorted.get(i + n).name.length <= blockSize) {
        used += DIRENT_SIZE + sorted.get(i + n).name.length;
        n++;
      }
      int nameOff = n * DIRENT_SIZE;
      for (int k = 0; k < n; k++) {
        Entry e = sorted.get(i + k);
        int d = blockStart + k * DIRENT_SIZE;
        b.putLong(d, e.nid);
        b.putShort(d + 8, (short) nameOff);
        b.put(d + 10, (byte) e.fileType);
        System.arraycopy(e.name, 0, out, blockStart + nameOff, e.name.length);
        nameOff += e.name.length;
      }
      i += n;
      blockStart += blockSize;
    }
    return out;
  }

  /**
   * Decodes one directory block: {@code maxSize} = min(blockSize, i_size - block start) bytes at
   * {@code offset}. Rejects anything the kernel would, plus empty or over-long names.
   */
  public static List<Entry> decodeBlock(ByteBuffer buf, int offset, int maxSize)
      throws ErofsFormatException {
    ByteBuffer b = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    if (maxSize < DIRENT_SIZE) {
      throw new ErofsFormatException("directory block of " + maxSize + " bytes");
    }
    int nameOff0 = b.getShort(offset + 8) & 0xffff;
    if (nameOff0 < DIRENT_SIZE || nameOff0 >= maxSize || nameOff0 % DIRENT_SIZE != 0) {
      throw new ErofsFormatException(
          "bad first name offset " + nameOff0 + " in a directory block of " + maxSize + " bytes");
    }
    int count = nameOff0 / DIRENT_SIZE;
    List<Entry> out = new ArrayList<>(count);
    for (int k = 0; k < count; k++) {
      int d = offset + k * DIRENT_SIZE;
      int start = b.getShort(d + 8) & 0xffff;
      int end;
      if (k + 1 < count) {
        end = b.getShort(d + DIRENT_SIZE + 8) & 0xffff;
      } else {
        end = start;
        while (end < maxSize && b.get(offset + end) != 0) {
          end++;
        }
      }
      if (start < nameOff0 || end > maxSize || end <= start || end - start > MAX_NAME) {
        throw new ErofsFormatException(
            "bad name bounds [" + start + ", " + end + ") in directory entry " + k);
      }
      byte[] name = new byte[end - start];
      b.get(offset + start, name);
      out.add(new Entry(name, b.getLong(d), b.get(d + 10) & 0xff));
    }
    return out;
  }
}

package dev.lazypull.gzindex;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * The gzip checkpoint table in SOCI's zinfo layout, which erofs-utils 1.9 ({@code mkfs.erofs
 * --gzinfo}, {@code mount.erofs oci.zinfo=}) also writes and reads. All integers little-endian,
 * tightly packed:
 *
 * <pre>
 *   header       u32 checkpoint count, u64 span size                                  12 bytes
 *   checkpoint   u64 in (compressed offset), u64 out (uncompressed offset), u8 bits,
 *                32,768-byte window                                                 32,785 bytes each
 * </pre>
 *
 * Version 2 stores every checkpoint; version 1 (old SOCI) stores all but the first, which is
 * implicit: in 10, bits 0, out 0, a zero window (it assumed a 10-byte gzip header). The version is
 * told by the length, as SOCI's {@code blob_to_zinfo} and erofs-utils' {@code
 * erofs_gzran_zinfo_open} do. We write version 2.
 *
 * <p>The decoder is strict and bounded: the count is checked against the layer's compressed size
 * and the file's length before anything is allocated, and the checkpoints must be in order, inside
 * the layer, start at output 0, and be at least 10 bits apart (the smallest deflate block). Windows
 * stay in the file (or byte array) and are read on demand.
 */
public final class Zinfo {
  public static final int HEADER_SIZE = 12;
  public static final int WINDOW_SIZE = DeflateDecoder.WINDOW;
  public static final int CHECKPOINT_SIZE = 8 + 8 + 1 + WINDOW_SIZE;

  /** Where the windows are: a file or bytes in memory. */
  private interface Windows {
    void read(long position, byte[] dst) throws IOException;
  }

  private final int version;
  private final long spanSize;
  private final List<Checkpoint> checkpoints;
  private final Windows windows;
  private final byte[] sha256;

  private Zinfo(
      int version, long spanSize, List<Checkpoint> checkpoints, Windows windows, byte[] sha256) {
    this.version = version;
    this.spanSize = spanSize;
    this.checkpoints = checkpoints;
    this.windows = windows;
    this.sha256 = sha256;
  }

  public int version() {
    return version;
  }

  public long spanSize() {
    return spanSize;
  }

  public List<Checkpoint> checkpoints() {
    return checkpoints;
  }

  /** The sha256 of the zinfo bytes as read. */
  public byte[] sha256() {
    return sha256.clone();
  }

  /** Reads checkpoint {@code i}'s 32 KiB window into {@code dst}. */
  public void window(int i, byte[] dst) throws IOException {
    Objects.checkIndex(i, checkpoints.size());
    if (version == 1 && i == 0) {
      Arrays.fill(dst, 0, WINDOW_SIZE, (byte) 0);
      return;
    }
    int stored = version == 1 ? i - 1 : i;
    windows.read(HEADER_SIZE + (long) stored * CHECKPOINT_SIZE + 17, dst);
  }

  /**
   * The most checkpoints a layer of {@code compressedSize} bytes can have (one per 10 bits after
   * the header).
   */
  public static long maxCheckpoints(long compressedSize) {
    return Math.max(0, (compressedSize * 8 - 80) / 10 + 1);
  }

  /** The zinfo's size for {@code count} checkpoints (version 2). */
  public static long size(long count) {
    return HEADER_SIZE + count * CHECKPOINT_SIZE;
  }

  // ----------------------------------------------------------------------------------------------
  // encoding

  /** Encodes a version 2 zinfo in memory. */
  public static byte[] encode(long spanSize, List<Checkpoint> checkpoints, List<byte[]> windows) {
    if (checkpoints.size() != windows.size()) {
      throw new IllegalArgumentException(
          checkpoints.size() + " checkpoints, " + windows.size() + " windows");
    }
    long size = size(checkpoints.size());
    if (size > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException(
          "zinfo of " + checkpoints.size() + " checkpoints too large for memory");
    }
    ByteBuffer b = ByteBuffer.allocate((int) size).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(checkpoints.size()).putLong(spanSize);
    for (int i = 0; i < checkpoints.size(); i++) {
      putCheckpoint(b, checkpoints.get(i), windows.get(i));
    }
    return b.array();
  }

  private static void putCheckpoint(ByteBuffer b, Checkpoint cp, byte[] window) {
    if (window.length != WINDOW_SIZE) {
      throw new IllegalArgumentException("window of " + window.length + " bytes");
    }
    b.putLong(cp.in()).putLong(cp.out()).put((byte) cp.bits()).put(window);
  }

  /**
   * A checkpoint sink that keeps the windows in memory (tests, small layers); {@link #encode()} at
   * the end.
   */
  public static final class Memory implements GzipIndexer.CheckpointSink {
    private final long spanSize;
    private final List<Checkpoint> checkpoints = new ArrayList<>();
    private final List<byte[]> windows = new ArrayList<>();

    public Memory(long spanSize) {
      this.spanSize = spanSize;
    }

    @Override
    public void accept(int index, Checkpoint checkpoint, byte[] window) {
      checkpoints.add(checkpoint);
      windows.add(window.clone());
    }

    public byte[] encode() {
      return Zinfo.encode(spanSize, checkpoints, windows);
    }
  }

  /**
   * A checkpoint sink that streams the zinfo to a file as checkpoints are made (memory: one
   * checkpoint), then writes the count into the header: at most one window in memory whatever the
   * layer's size.
   */
  public static final class Writer implements GzipIndexer.CheckpointSink {
    private final FileChannel ch;
    private final long start;
    private final long spanSize;
    private final ByteBuffer buf =
        ByteBuffer.allocate(CHECKPOINT_SIZE).order(ByteOrder.LITTLE_ENDIAN);
    private long count;

    /** Writes from the channel's current position. */
    public Writer(FileChannel ch, long spanSize) throws IOException {
      this.ch = ch;
      this.start = ch.position();
      this.spanSize = spanSize;
      writeHeader(0);
    }

    private void writeHeader(long n) throws IOException {
      ByteBuffer h = ByteBuffer.allocate(HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
      h.putInt((int) n).putLong(spanSize).flip();
      while (h.hasRemaining()) {
        ch.write(h, start + HEADER_SIZE - h.remaining());
      }
    }

    @Override
    public void accept(int index, Checkpoint checkpoint, byte[] window) throws IOException {
      buf.clear();
      putCheckpoint(buf, checkpoint, window);
      buf.flip();
      long pos = start + size(count);
      while (buf.hasRemaining()) {
        pos += ch.write(buf, pos);
      }
      count++;
    }

    /** Writes the final count; returns the zinfo's size in bytes. */
    public long finish() throws IOException {
      if (count > 0xffffffffL) {
        throw new IOException("too many checkpoints for zinfo: " + count);
      }
      writeHeader(count);
      ch.position(start + size(count));
      return size(count);
    }
  }

  // ----------------------------------------------------------------------------------------------
  // decoding

  /**
   * Decodes a zinfo held in memory.
   *
   * @param compressedSize the layer's compressed size (bounds the count and the offsets)
   * @param uncompressedSize the layer's uncompressed size (bounds the offsets)
   */
  public static Zinfo read(byte[] bytes, long compressedSize, long uncompressedSize)
      throws IndexFormatException {
    try {
      return read(
          bytes.length,
          (pos, dst) -> {
            System.arraycopy(bytes, (int) pos, dst, 0, dst.length);
          },
          compressedSize,
          uncompressedSize);
    } catch (IndexFormatException e) {
      throw e;
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  /**
   * Decodes a zinfo file from position 0 to the channel's size; the windows are read from the file
   * when asked for, so the channel must stay open. Reads the whole file once (to hash it).
   */
  public static Zinfo read(FileChannel ch, long compressedSize, long uncompressedSize)
      throws IOException {
    long len = ch.size();
    return read(
        len,
        (pos, dst) -> {
          ByteBuffer b = ByteBuffer.wrap(dst);
          while (b.hasRemaining()) {
            if (ch.read(b, pos + b.position()) < 0) {
              throw new IndexFormatException("zinfo file shrank while in use");
            }
          }
        },
        compressedSize,
        uncompressedSize);
  }

  private static Zinfo read(long len, Windows src, long compressedSize, long uncompressedSize)
      throws IOException {
    if (len < HEADER_SIZE) {
      throw new IndexFormatException("zinfo of " + len + " bytes: shorter than its 12-byte header");
    }
    byte[] hb = new byte[HEADER_SIZE];
    src.read(0, hb);
    ByteBuffer h = ByteBuffer.wrap(hb).order(ByteOrder.LITTLE_ENDIAN);
    long count = Integer.toUnsignedLong(h.getInt());
    long span = h.getLong();
    if (count == 0) {
      throw new IndexFormatException("zinfo with no checkpoints");
    }
    long max = maxCheckpoints(compressedSize);
    if (count > max) {
      throw new IndexFormatException(
          "zinfo claims "
              + count
              + " checkpoints; a layer of "
              + compressedSize
              + " compressed bytes has room for at most "
              + max);
    }
    int version;
    if (len == size(count)) {
      version = 2;
    } else if (len == size(count - 1)) {
      version = 1;
    } else {
      throw new IndexFormatException(
          "zinfo of "
              + len
              + " bytes does not hold "
              + count
              + " checkpoints ("
              + size(count)
              + " bytes in version 2, "
              + size(count - 1)
              + " in version 1)");
    }
    if (span <= 0) {
      throw new IndexFormatException("zinfo span size " + Long.toUnsignedString(span));
    }
    MessageDigest md = newSha256();
    md.update(hb);
    List<Checkpoint> cps = new ArrayList<>((int) count);
    if (version == 1) {
      cps.add(new Checkpoint(10, 0, 0));
    }
    byte[] rec = new byte[CHECKPOINT_SIZE];
    ByteBuffer r = ByteBuffer.wrap(rec).order(ByteOrder.LITTLE_ENDIAN);
    for (long i = 0, stored = version == 1 ? count - 1 : count; i < stored; i++) {
      src.read(size(i), rec);
      md.update(rec);
      long in = r.getLong(0);
      long out = r.getLong(8);
      int bits = rec[16];
      int index = cps.size();
      if (bits < 0
          || bits > 7
          || in < (bits == 0 ? 0 : 1)
          || in > compressedSize
          || out < 0
          || out > uncompressedSize) {
        throw new IndexFormatException(
            "zinfo checkpoint "
                + index
                + " (in "
                + Long.toUnsignedString(in)
                + ", bits "
                + (bits & 0xff)
                + ", out "
                + Long.toUnsignedString(out)
                + ") is outside the layer ("
                + compressedSize
                + " compressed, "
                + uncompressedSize
                + " uncompressed bytes)");
      }
      cps.add(new Checkpoint(in, bits, out));
    }
    for (int i = 0; i < cps.size(); i++) {
      Checkpoint cp = cps.get(i);
      if (i == 0 && (cp.out() != 0 || cp.bitPosition() < 80)) {
        throw new IndexFormatException(
            "zinfo's first checkpoint (in "
                + cp.in()
                + ", out "
                + cp.out()
                + ") is not at the start of the first deflate stream");
      }
      if (cp.firstByte() >= compressedSize) {
        throw new IndexFormatException("zinfo checkpoint " + i + " starts at the end of the layer");
      }
      if (i > 0) {
        Checkpoint p = cps.get(i - 1);
        if (cp.bitPosition() < p.bitPosition() + 10 || cp.out() < p.out()) {
          throw new IndexFormatException(
              "zinfo checkpoints "
                  + (i - 1)
                  + " and "
                  + i
                  + " are out of order ("
                  + p
                  + ", "
                  + cp
                  + ")");
        }
      }
    }
    return new Zinfo(version, span, List.copyOf(cps), src, md.digest());
  }

  static MessageDigest newSha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }
}

package dev.lazypull.overlay;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.zip.CRC32C;
import org.roaringbitmap.RoaringBitmap;

/**
 * The state of every block of an overlay: <b>untouched</b> (reads the base), <b>dirty</b> (reads
 * the overlay's data file) or <b>zero</b> (reads zeros) — two roaring bitmaps, dirty and zero,
 * never both set for a block, with O(1)-ish range operations. Not thread-safe: the overlay guards
 * it.
 *
 * <p>Encoded as the overlay's state file (all integers little-endian; the bitmaps in
 * RoaringBitmap's portable serialization, readable by the C, Go and Rust implementations):
 *
 * <pre>
 *   0  8  magic "LPOVLST1"
 *   8  4  version (1)
 *  12  4  block size
 *  16  8  device size in bytes
 *  24  8  generation (counts the states written)
 *  32  4  dirty bitmap length D
 *  36  4  zero bitmap length Z
 *  40  D  dirty bitmap
 *  40+D Z zero bitmap
 *  ... 4  crc32c of every byte before it
 * </pre>
 */
public final class BlockStates {
  public enum State {
    UNTOUCHED,
    DIRTY,
    ZERO
  }

  /** A run of blocks {@code [from, to)} in one state. */
  public interface RunConsumer {
    void run(long from, long to, State state);
  }

  static final byte[] MAGIC = "LPOVLST1".getBytes(StandardCharsets.US_ASCII);
  static final int VERSION = 1;
  static final int HEADER = 40;

  /**
   * Blocks are 32-bit values in the bitmaps; kept below 2^31 so every index is a non-negative int.
   */
  public static final long MAX_BLOCKS = Integer.MAX_VALUE;

  private final long blocks;
  private final RoaringBitmap dirty;
  private final RoaringBitmap zero;

  public BlockStates(long blocks) {
    this(blocks, new RoaringBitmap(), new RoaringBitmap());
  }

  private BlockStates(long blocks, RoaringBitmap dirty, RoaringBitmap zero) {
    if (blocks < 0 || blocks > MAX_BLOCKS) {
      throw new IllegalArgumentException(blocks + " blocks: at most " + MAX_BLOCKS);
    }
    this.blocks = blocks;
    this.dirty = dirty;
    this.zero = zero;
  }

  public long blocks() {
    return blocks;
  }

  public State state(long block) {
    int b = (int) block;
    return dirty.contains(b) ? State.DIRTY : zero.contains(b) ? State.ZERO : State.UNTOUCHED;
  }

  private void check(long from, long to) {
    if (from < 0 || to > blocks || from > to) {
      throw new IllegalArgumentException(
          "blocks [" + from + ", " + to + ") outside [0, " + blocks + ")");
    }
  }

  /** Blocks {@code [from, to)} are dirty. */
  public void markDirty(long from, long to) {
    check(from, to);
    dirty.add(from, to);
    zero.remove(from, to);
  }

  /** Blocks {@code [from, to)} are zero. */
  public void markZero(long from, long to) {
    check(from, to);
    zero.add(from, to);
    dirty.remove(from, to);
  }

  /** Whether any block of {@code [from, to)} is dirty. */
  public boolean anyDirty(long from, long to) {
    check(from, to);
    return from < to && dirty.intersects(from, to);
  }

  public long dirtyCount() {
    return dirty.getLongCardinality();
  }

  public long zeroCount() {
    return zero.getLongCardinality();
  }

  /** A copy of the dirty bitmap. */
  public RoaringBitmap dirty() {
    return dirty.clone();
  }

  /** A copy of the zero bitmap. */
  public RoaringBitmap zero() {
    return zero.clone();
  }

  /** Calls {@code c} for each maximal run of one state in {@code [from, to)}, in order. */
  public void forEachRun(long from, long to, RunConsumer c) {
    check(from, to);
    long p = from;
    while (p < to) {
      int b = (int) p;
      long end;
      State s;
      if (dirty.contains(b)) {
        s = State.DIRTY;
        end = dirty.nextAbsentValue(b);
      } else if (zero.contains(b)) {
        s = State.ZERO;
        end = zero.nextAbsentValue(b);
      } else {
        s = State.UNTOUCHED;
        long d = dirty.nextValue(b);
        long z = zero.nextValue(b);
        end = Math.min(d < 0 ? Long.MAX_VALUE : d, z < 0 ? Long.MAX_VALUE : z);
      }
      end = end < 0 ? to : Math.min(end, to);
      c.run(p, end, s);
      p = end;
    }
  }

  public BlockStates copy() {
    return new BlockStates(blocks, dirty.clone(), zero.clone());
  }

  // ---- the state file
  // ------------------------------------------------------------------------------------

  /** The state file's bytes for a device of {@code size} bytes in blocks of {@code blockSize}. */
  public byte[] encode(int blockSize, long size, long generation) {
    dirty.runOptimize();
    zero.runOptimize();
    int d = dirty.serializedSizeInBytes();
    int z = zero.serializedSizeInBytes();
    ByteBuffer b = ByteBuffer.allocate(HEADER + d + z + 4).order(ByteOrder.LITTLE_ENDIAN);
    b.put(MAGIC)
        .putInt(VERSION)
        .putInt(blockSize)
        .putLong(size)
        .putLong(generation)
        .putInt(d)
        .putInt(z);
    dirty.serialize(b);
    zero.serialize(b);
    CRC32C crc = new CRC32C();
    crc.update(b.array(), 0, b.position());
    b.putInt((int) crc.getValue());
    return b.array();
  }

  /** What a state file holds. */
  public record Decoded(int blockSize, long size, long generation, BlockStates states) {}

  /**
   * The largest state file a device of {@code blocks} blocks can have: two bitmaps of at most 8 KiB
   * plus a little per 65536 blocks, and the header. Longer files are refused before being read.
   */
  public static long maxEncodedSize(long blocks) {
    long containers = (blocks + 65535) / 65536;
    return HEADER + 4 + 2 * (8 + containers * (8192 + 16));
  }

  /**
   * Decodes a state file.
   *
   * @throws IOException naming what is wrong: bad magic, version, checksum, lengths, or bitmaps
   *     that do not decode, name blocks past the device, or overlap
   */
  public static Decoded decode(byte[] bytes) throws IOException {
    if (bytes.length < HEADER + 4) {
      throw new IOException("state file of " + bytes.length + " bytes is truncated");
    }
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    byte[] magic = new byte[MAGIC.length];
    b.get(magic);
    if (!Arrays.equals(magic, MAGIC)) {
      throw new IOException("not an overlay state file (bad magic)");
    }
    CRC32C crc = new CRC32C();
    crc.update(bytes, 0, bytes.length - 4);
    int stored =
        ByteBuffer.wrap(bytes, bytes.length - 4, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
    if ((int) crc.getValue() != stored) {
      throw new IOException("state file checksum mismatch (the file is damaged)");
    }
    int version = b.getInt();
    if (version != VERSION) {
      throw new IOException("state file version " + version + ", expected " + VERSION);
    }
    int blockSize = b.getInt();
    long size = b.getLong();
    long generation = b.getLong();
    long d = Integer.toUnsignedLong(b.getInt());
    long z = Integer.toUnsignedLong(b.getInt());
    if (blockSize <= 0 || Integer.bitCount(blockSize) != 1 || size < 0) {
      throw new IOException("state file: block size " + blockSize + ", device size " + size);
    }
    long blocks = (size + blockSize - 1) / blockSize;
    if (blocks > MAX_BLOCKS || HEADER + d + z + 4 != bytes.length) {
      throw new IOException(
          "state file: bitmap lengths "
              + d
              + " + "
              + z
              + " do not fill its "
              + bytes.length
              + " bytes");
    }
    RoaringBitmap dirty = bitmap(b, (int) d, "dirty");
    RoaringBitmap zero = bitmap(b, (int) z, "zero");
    if (!dirty.isEmpty() && Integer.toUnsignedLong(dirty.last()) >= blocks
        || !zero.isEmpty() && Integer.toUnsignedLong(zero.last()) >= blocks) {
      throw new IOException("state file names blocks past the device's " + blocks);
    }
    if (RoaringBitmap.intersects(dirty, zero)) {
      throw new IOException("state file has blocks both dirty and zero");
    }
    return new Decoded(blockSize, size, generation, new BlockStates(blocks, dirty, zero));
  }

  private static RoaringBitmap bitmap(ByteBuffer b, int length, String what) throws IOException {
    ByteBuffer slice = b.slice(b.position(), length).order(ByteOrder.LITTLE_ENDIAN);
    b.position(b.position() + length);
    RoaringBitmap r = new RoaringBitmap();
    try {
      r.deserialize(slice);
    } catch (IOException | RuntimeException e) { // garbage makes the decoder throw anything
      throw new IOException("state file: the " + what + " bitmap does not decode: " + e);
    }
    if (r.serializedSizeInBytes()
        != length) { // deserialize leaves the position alone: compare sizes
      throw new IOException(
          "state file: the "
              + what
              + " bitmap takes "
              + r.serializedSizeInBytes()
              + " of its "
              + length
              + " bytes");
    }
    return r;
  }

  /** For messages. */
  @Override
  public String toString() {
    return blocks + " blocks: " + dirtyCount() + " dirty, " + zeroCount() + " zero";
  }
}

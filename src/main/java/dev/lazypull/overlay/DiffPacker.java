package dev.lazypull.overlay;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import org.roaringbitmap.RoaringBitmap;

/**
 * Packs the blocks of a snapshot diff: each block to take is read, checked for zeros, and either
 * appended to the packed data (in block order: block b ends up at (rank(b) − 1) × block size) or
 * recorded as zero. So a diff never carries a zero block, whatever wrote it (a partial write that
 * left a dirty block all zero, blocks of a chain being squashed). Reads go in runs of consecutive
 * blocks; memory is one run's buffer.
 */
public final class DiffPacker {
  /** Blocks read at once, at most. */
  static final int RUN_BYTES = 1 << 20;

  private DiffPacker() {}

  /**
   * Where the blocks' bytes come from: {@code dst.remaining()} bytes at device offset {@code
   * offset}.
   */
  public interface BlockReader {
    void read(long offset, ByteBuffer dst) throws IOException;
  }

  /**
   * What was packed.
   *
   * @param data the blocks in the packed data, in order
   * @param zero the blocks the diff zeroes
   * @param bytes bytes appended to the packed data (data blocks × block size)
   */
  public record Packed(RoaringBitmap data, RoaringBitmap zero, long bytes) {}

  /**
   * Reads every block of {@code take} through {@code reader} and appends the non-zero ones to
   * {@code out} (from its current size); the zero ones, and every block of {@code knownZero},
   * become the zero set.
   *
   * @param size the device size: the last block may be short, and is padded with zeros in the
   *     packed data
   */
  public static Packed pack(
      RoaringBitmap take,
      RoaringBitmap knownZero,
      int blockSize,
      long size,
      BlockReader reader,
      FileChannel out)
      throws IOException {
    RoaringBitmap data = new RoaringBitmap();
    RoaringBitmap zero = RoaringBitmap.andNot(knownZero, take);
    int perRun = Math.max(1, RUN_BYTES / blockSize);
    ByteBuffer buf = ByteBuffer.allocateDirect(perRun * blockSize);
    long written = 0;
    long pos = out.size();
    for (long v = take.nextValue(0); v >= 0; ) {
      long runEnd = Math.min(take.nextAbsentValue((int) v), v + perRun);
      long from = v * blockSize;
      long to = Math.min(runEnd * blockSize, size);
      buf.clear();
      ZeroCheck.fill(buf.duplicate(), buf.capacity());
      buf.limit((int) (to - from));
      reader.read(from, buf.duplicate());
      for (long b = v; b < runEnd; b++) {
        ByteBuffer blk =
            buf.duplicate()
                .limit((int) ((b - v + 1) * blockSize))
                .position((int) ((b - v) * blockSize));
        if (ZeroCheck.isZero(blk)) {
          zero.add((int) b);
        } else {
          while (blk.hasRemaining()) {
            pos += out.write(blk, pos);
          }
          data.add((int) b);
          written += blockSize;
        }
      }
      v = runEnd > Integer.MAX_VALUE ? -1 : take.nextValue((int) runEnd);
    }
    return new Packed(data, zero, written);
  }
}

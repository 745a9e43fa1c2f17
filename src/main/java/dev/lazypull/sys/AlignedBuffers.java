package dev.lazypull.sys;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Off-heap buffers aligned for O_DIRECT. cachefiles writes through the anon fd with direct I/O,
 * which needs the user buffer, the file offset and the length aligned to the backing filesystem's
 * block (4096 covers all).
 */
public final class AlignedBuffers {
  public static final int ALIGNMENT = 4096;

  private AlignedBuffers() {}

  /**
   * A direct buffer of {@code size} bytes (rounded up to the alignment) whose address is
   * 4096-aligned.
   */
  public static ByteBuffer allocate(int size) {
    int rounded = (int) roundUp(size, ALIGNMENT);
    ByteBuffer raw = ByteBuffer.allocateDirect(rounded + ALIGNMENT);
    ByteBuffer aligned = raw.alignedSlice(ALIGNMENT);
    aligned.limit(rounded);
    return aligned.slice().order(ByteOrder.nativeOrder());
  }

  public static long roundUp(long value, long alignment) {
    return (value + alignment - 1) / alignment * alignment;
  }

  public static long roundDown(long value, long alignment) {
    return value / alignment * alignment;
  }
}

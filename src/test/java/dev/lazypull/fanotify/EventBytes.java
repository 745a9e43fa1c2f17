package dev.lazypull.fanotify;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Builds the bytes read(2) on a fanotify group returns, as the kernel lays them out (native order).
 */
public final class EventBytes {
  public static final long FAN_PRE_ACCESS = 0x100000L;

  private final ByteArrayOutputStream out = new ByteArrayOutputStream();

  /** Appends a version-3 event with these info records. */
  public EventBytes event(long mask, int fd, int pid, byte[]... records) {
    int len = FanotifyDecoder.METADATA_LEN;
    for (byte[] r : records) {
      len += r.length;
    }
    return raw(metadata(len, 3, 24, mask, fd, pid), records);
  }

  /** Appends a pre-content event with a range record. */
  public EventBytes preAccess(int fd, int pid, long offset, long count) {
    return event(FAN_PRE_ACCESS, fd, pid, range(offset, count));
  }

  /** Appends raw metadata and records as given (for malformed input). */
  public EventBytes raw(byte[] metadata, byte[]... records) {
    out.writeBytes(metadata);
    for (byte[] r : records) {
      out.writeBytes(r);
    }
    return this;
  }

  public byte[] bytes() {
    return out.toByteArray();
  }

  /** The bytes in a buffer positioned at 0. */
  public ByteBuffer buffer() {
    return ByteBuffer.wrap(bytes());
  }

  public static byte[] metadata(
      long eventLen, int vers, int metadataLen, long mask, int fd, int pid) {
    return ByteBuffer.allocate(24)
        .order(ByteOrder.nativeOrder())
        .putInt((int) eventLen)
        .put((byte) vers)
        .put((byte) 0)
        .putShort((short) metadataLen)
        .putLong(mask)
        .putInt(fd)
        .putInt(pid)
        .array();
  }

  public static byte[] range(long offset, long count) {
    return ByteBuffer.allocate(24)
        .order(ByteOrder.nativeOrder())
        .put((byte) FanotifyDecoder.INFO_TYPE_RANGE)
        .put((byte) 0)
        .putShort((short) 24)
        .putInt(0)
        .putLong(offset)
        .putLong(count)
        .array();
  }

  /**
   * An info record of {@code type} whose header says {@code len} and which occupies {@code size}
   * bytes.
   */
  public static byte[] record(int type, int len, int size) {
    ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.nativeOrder());
    if (size >= 4) {
      b.put((byte) type).put((byte) 0).putShort((short) len);
    }
    while (b.hasRemaining()) {
      b.put((byte) 0x5a);
    }
    return b.array();
  }
}

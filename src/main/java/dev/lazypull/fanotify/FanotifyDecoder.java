package dev.lazypull.fanotify;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Decodes the events one read(2) on a fanotify group returned. Pure: no I/O, and it never throws on
 * bad bytes — they become {@link FanotifyMessage.Malformed} items that still carry the event's fd
 * when it can be known, so no fd (and no waiting reader) is lost.
 *
 * <p>Layout (native byte order, include/uapi/linux/fanotify.h): each event is {@code struct
 * fanotify_event_metadata} {@code {u32 event_len, u8 vers, u8 reserved, u16 metadata_len, u64 mask,
 * s32 fd, s32 pid}} (24 bytes) followed by info records {@code {u8 info_type, u8 pad, u16 len,
 * ...}} up to {@code event_len}; the range record (type 6) is {@code {header, u32 pad, u64 offset,
 * u64 count}} (24 bytes). Records of other types are skipped by their length.
 *
 * <p>Recovery: an event whose {@code event_len} is plausible (at least 24 and inside the buffer) is
 * skipped by it even when its contents are bad, so the events after it are still decoded. An
 * implausible {@code event_len} (0 would loop forever) ends decoding with one Malformed item for
 * the rest.
 */
public final class FanotifyDecoder {
  /** FAN_EVENT_METADATA_LEN. */
  public static final int METADATA_LEN = 24;

  /** FANOTIFY_METADATA_VERSION. */
  public static final int VERSION = 3;

  public static final int INFO_HEADER_LEN = 4;

  /** FAN_EVENT_INFO_TYPE_RANGE. */
  public static final int INFO_TYPE_RANGE = 6;

  /** sizeof(struct fanotify_event_info_range). */
  public static final int RANGE_INFO_LEN = 24;

  /**
   * A read buffer size: read(2) fails with EINVAL when the buffer cannot hold the next whole event,
   * and returns as many whole events as fit; 64 KiB holds over a thousand pre-content events.
   */
  public static final int READ_BUFFER_SIZE = 65536;

  private static final int FD_OFFSET = 16;

  private FanotifyDecoder() {}

  /**
   * Decodes {@code length} bytes starting at {@code buf}'s position (the buffer's order and
   * position are left alone). Returns the items in order; empty for {@code length == 0}.
   */
  public static List<FanotifyMessage> decode(ByteBuffer buf, int length) {
    if (length < 0 || length > buf.remaining()) {
      throw new IllegalArgumentException(
          "length " + length + " outside the buffer's " + buf.remaining() + " bytes");
    }
    ByteBuffer b = buf.duplicate().order(ByteOrder.nativeOrder());
    int base = b.position();
    List<FanotifyMessage> out = new ArrayList<>();
    int pos = 0;
    while (pos < length) {
      int p = base + pos;
      int rem = length - pos;
      int vers = rem > 4 ? b.get(p + 4) & 0xff : -1;
      int fd = vers == VERSION && rem >= FD_OFFSET + 4 ? b.getInt(p + FD_OFFSET) : -1;
      long mask = vers == VERSION && rem >= FD_OFFSET ? b.getLong(p + 8) : 0;
      if (rem < METADATA_LEN) {
        out.add(
            new FanotifyMessage.Malformed(
                fd,
                mask,
                "truncated event: "
                    + rem
                    + " bytes at offset "
                    + pos
                    + " (the metadata alone is "
                    + METADATA_LEN
                    + ")"));
        break;
      }
      long eventLen = Integer.toUnsignedLong(b.getInt(p));
      if (eventLen < METADATA_LEN || eventLen > rem) {
        out.add(
            new FanotifyMessage.Malformed(
                fd,
                mask,
                "event_len " + eventLen + " at offset " + pos + " with " + rem + " bytes left"));
        break;
      }
      out.add(decodeOne(b, p, (int) eventLen, vers, fd, mask, pos));
      pos += (int) eventLen;
    }
    return out;
  }

  private static FanotifyMessage decodeOne(
      ByteBuffer b, int p, int eventLen, int vers, int fd, long mask, int pos) {
    if (vers != VERSION) {
      return new FanotifyMessage.Malformed(
          -1, 0, "metadata version " + vers + " at offset " + pos + " (expected " + VERSION + ")");
    }
    int metadataLen = b.getShort(p + 6) & 0xffff;
    if (metadataLen != METADATA_LEN) {
      return new FanotifyMessage.Malformed(
          fd, mask, "metadata_len " + metadataLen + " (expected " + METADATA_LEN + ")");
    }
    int pid = b.getInt(p + 20);
    boolean hasRange = false;
    long offset = 0;
    long count = 0;
    int q = METADATA_LEN;
    while (q < eventLen) {
      if (eventLen - q < INFO_HEADER_LEN) {
        return new FanotifyMessage.Malformed(
            fd, mask, "truncated info record header at " + q + " of " + eventLen);
      }
      int type = b.get(p + q) & 0xff;
      int len = b.getShort(p + q + 2) & 0xffff;
      if (len < INFO_HEADER_LEN) {
        return new FanotifyMessage.Malformed(
            fd, mask, "info record of type " + type + " with length " + len);
      }
      if (len > eventLen - q) {
        return new FanotifyMessage.Malformed(
            fd,
            mask,
            "info record of type "
                + type
                + " and length "
                + len
                + " overruns the event ("
                + (eventLen - q)
                + " bytes left)");
      }
      if (type == INFO_TYPE_RANGE) {
        if (len != RANGE_INFO_LEN) {
          return new FanotifyMessage.Malformed(
              fd, mask, "range record of length " + len + " (expected " + RANGE_INFO_LEN + ")");
        }
        if (hasRange) {
          return new FanotifyMessage.Malformed(fd, mask, "two range records");
        }
        offset = b.getLong(p + q + 8);
        count = b.getLong(p + q + 16);
        if (offset < 0 || count < 0 || count > Long.MAX_VALUE - offset) {
          return new FanotifyMessage.Malformed(
              fd,
              mask,
              "range offset "
                  + Long.toUnsignedString(offset)
                  + " count "
                  + Long.toUnsignedString(count)
                  + " is out of bounds");
        }
        hasRange = true;
      }
      q += len;
    }
    return new FanotifyMessage.Event(mask, fd, pid, hasRange, offset, count);
  }
}

package dev.lazypull.fanotify;

import dev.lazypull.sys.Fanotify;

/**
 * One item decoded from what read(2) on a fanotify group returned ({@link FanotifyDecoder}).
 * Whatever its kind, a non-negative {@link #fd()} is an open descriptor the kernel installed in
 * this process: the caller owns it, answers it if it is a permission event (FAN_ALLOW / FAN_DENY by
 * that fd number, exactly once) and closes it.
 */
public sealed interface FanotifyMessage {
  /**
   * The event's fd, or a negative value when there is none (FAN_NOFD, or the fd could not be read).
   */
  int fd();

  /**
   * A well-formed event ({@code struct fanotify_event_metadata} and its info records).
   *
   * @param mask the event bits (e.g. {@link Fanotify#FAN_PRE_ACCESS})
   * @param fd an fd opened on the marked file without notifications (FMODE_NONOTIFY): writes
   *     through it raise no event; negative for an overflow event or when the kernel could not open
   *     the file (it has then already denied a permission event itself)
   * @param pid the thread-group id of the process whose access raised the event (0 when not
   *     visible)
   * @param hasRange whether a range record (FAN_EVENT_INFO_TYPE_RANGE) came with it; a pre-content
   *     event without one is an access whose position the kernel did not know: treat it as the
   *     whole file
   * @param offset the range's first byte (page-aligned by the kernel), 0 without a range
   * @param count the range's length (page-aligned, may reach past the end of the file), 0 without a
   *     range
   */
  record Event(long mask, int fd, int pid, boolean hasRange, long offset, long count)
      implements FanotifyMessage {
    /** Whether the event waits for an answer. */
    public boolean isPermission() {
      return (mask & Fanotify.PERMISSION_EVENTS) != 0;
    }

    /** The queue overflowed and events were lost (mask FAN_Q_OVERFLOW, no fd). */
    public boolean isOverflow() {
      return (mask & Fanotify.FAN_Q_OVERFLOW) != 0;
    }

    /** The end of the range (exclusive); never overflows (the decoder checks). */
    public long end() {
      return offset + count;
    }
  }

  /**
   * Bytes that do not form a valid event. Carries the fd whenever the metadata was complete enough
   * to read it (version 3, fd field inside the buffer), so the caller can still answer (deny) and
   * close it.
   *
   * @param mask the mask if it could be read, else 0
   */
  record Malformed(int fd, long mask, String reason) implements FanotifyMessage {}
}

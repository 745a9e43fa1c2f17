package dev.lazypull.fanotify;

import dev.lazypull.sys.Errno;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Encodes {@code struct fanotify_response} {@code {s32 fd, u32 response}} (8 bytes, native order),
 * the answer to a permission event written to the group. The kernel matches it to the event by the
 * fd number the event carried (fs/notify/fanotify/fanotify_user.c {@code process_access_response}).
 *
 * <p>Responses: {@link #ALLOW}, {@link #DENY} (the access fails with EPERM), and {@link
 * #denyErrno}: {@code FAN_DENY_ERRNO(err) = FAN_DENY | ((err & 0xff) << 24)} (6.14+, pre-content
 * groups only), which makes the access fail with {@code err}. The kernel accepts only the errnos a
 * read or write of a regular file may return: EIO, EPERM, EBUSY, ETXTBSY, EAGAIN, ENOSPC, EDQUOT;
 * any other is EINVAL.
 */
public final class FanotifyResponse {
  /** sizeof(struct fanotify_response). */
  public static final int SIZE = 8;

  public static final int ALLOW = 0x01;
  public static final int DENY = 0x02;
  static final int ERRNO_SHIFT = 24;
  static final int ERRNO_MASK = 0xff;

  static final int ETXTBSY = 26;
  static final int EDQUOT = 122;
  private static final int[] DENY_ERRNOS = {
    Errno.EIO, Errno.EPERM, Errno.EBUSY, ETXTBSY, Errno.EAGAIN, Errno.ENOSPC, EDQUOT
  };

  private FanotifyResponse() {}

  /**
   * {@code FAN_DENY_ERRNO(errno)}: deny, and the access fails with {@code errno}; 0 means a plain
   * {@link #DENY}.
   *
   * @throws IllegalArgumentException for an errno the kernel would refuse
   */
  public static int denyErrno(int errno) {
    if (errno == 0) {
      return DENY;
    }
    for (int e : DENY_ERRNOS) {
      if (e == errno) {
        return DENY | (errno << ERRNO_SHIFT);
      }
    }
    throw new IllegalArgumentException(
        "the kernel refuses FAN_DENY_ERRNO("
            + errno
            + "): only EIO, EPERM, EBUSY,"
            + " ETXTBSY, EAGAIN, ENOSPC and EDQUOT are allowed");
  }

  /** The errno a response carries (0 for ALLOW and plain DENY). */
  public static int errnoOf(int response) {
    return (response >>> ERRNO_SHIFT) & ERRNO_MASK;
  }

  /**
   * Whether {@code response} is one the kernel accepts: ALLOW, DENY, or DENY with an allowed errno.
   */
  public static boolean isValid(int response) {
    if (response == ALLOW || response == DENY) {
      return true;
    }
    if ((response & ~(ERRNO_MASK << ERRNO_SHIFT)) != DENY) {
      return false;
    }
    int errno = errnoOf(response);
    for (int e : DENY_ERRNOS) {
      if (e == errno) {
        return true;
      }
    }
    return false;
  }

  /**
   * Writes the response for event fd {@code fd} at {@code out}'s position and advances it by {@link
   * #SIZE}.
   *
   * @throws IllegalArgumentException for a negative fd or a response the kernel would refuse
   */
  public static ByteBuffer encode(ByteBuffer out, int fd, int response) {
    if (fd < 0) {
      throw new IllegalArgumentException("no event has fd " + fd);
    }
    if (!isValid(response)) {
      throw new IllegalArgumentException(
          "invalid fanotify response 0x" + Integer.toHexString(response));
    }
    ByteOrder order = out.order();
    out.order(ByteOrder.nativeOrder()).putInt(fd).putInt(response).order(order);
    return out;
  }

  /** "ALLOW", "DENY", "DENY(errno 5 (Input/output error))" — for logs. */
  public static String describe(int response) {
    if (response == ALLOW) {
      return "ALLOW";
    }
    int errno = errnoOf(response);
    if ((response & ~(ERRNO_MASK << ERRNO_SHIFT)) == DENY) {
      return errno == 0 ? "DENY" : "DENY(" + Errno.describe(errno) + ")";
    }
    return "0x" + Integer.toHexString(response);
  }
}

package dev.lazypull.fscache;

import java.nio.charset.StandardCharsets;

/**
 * One request read from {@code /dev/cachefiles} in on-demand mode ({@code struct cachefiles_msg}).
 * The kernel delivers exactly one message per read(2). Names follow
 * include/uapi/linux/cachefiles.h.
 */
public sealed interface CachefilesMsg {
  int OPCODE_OPEN = 0;
  int OPCODE_CLOSE = 1;
  int OPCODE_READ = 2;

  /** Request slot index: the key for {@code copen} and the READ_COMPLETE ioctl. */
  int msgId();

  /** Per-object id in [1, INT_MAX], assigned when the OPEN is read. */
  int objectId();

  /**
   * OPEN: the kernel looked up a cookie's backing object and installed anon fd {@code fd} in our fd
   * table.
   *
   * @param volumeKey the volume key without its trailing NUL, e.g. {@code erofs,<fsid or
   *     domain_id>}
   * @param cookieKey the cookie key bytes (no NUL), held as ISO-8859-1 text so every byte survives;
   *     for EROFS it is the fsid (bootstrap) or a device tag / {@code device=} name (data blob)
   */
  record Open(int msgId, int objectId, String volumeKey, String cookieKey, int fd, int flags)
      implements CachefilesMsg {
    /** The cookie key for logs: printable ASCII kept, anything else escaped. */
    public String printableCookieKey() {
      return printable(cookieKey);
    }
  }

  /**
   * READ: make [{@code offset}, {@code offset + length}) present in the object's backing file, then
   * cread.
   */
  record Read(int msgId, int objectId, long offset, long length) implements CachefilesMsg {}

  /** CLOSE: the cookie was withdrawn; close every fd held for the object. Gets no reply. */
  record Close(int msgId, int objectId) implements CachefilesMsg {}

  /**
   * A message that could not be decoded. Carries whatever could be read safely so the daemon can
   * still answer (refuse an OPEN and close its fd, fail a READ) instead of leaving the kernel
   * waiting.
   *
   * @param opcode the opcode if the header was complete, else -1
   * @param fd the anon fd of an OPEN whose fd field was readable, else -1 (it must be closed)
   */
  record Malformed(int msgId, int objectId, int opcode, int fd, String reason)
      implements CachefilesMsg {}

  static String printable(String s) {
    StringBuilder b = new StringBuilder(s.length());
    for (byte c : s.getBytes(StandardCharsets.ISO_8859_1)) {
      if (c >= 0x20 && c < 0x7f && c != '\\') {
        b.append((char) c);
      } else {
        b.append(String.format("\\x%02x", c & 0xff));
      }
    }
    return b.toString();
  }
}

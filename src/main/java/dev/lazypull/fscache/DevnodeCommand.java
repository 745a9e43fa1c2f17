package dev.lazypull.fscache;

import java.nio.charset.StandardCharsets;

/**
 * Formats the text commands written to {@code /dev/cachefiles}. The kernel parses one command per
 * write(2), rejects any NUL byte (EINVAL) and anything of PAGE_SIZE or more (EOPNOTSUPP), and
 * strips one trailing newline; so commands are sent bare, without terminator. See
 * fs/cachefiles/daemon.c.
 */
public final class DevnodeCommand {
  /** Longest command the kernel accepts (PAGE_SIZE - 1 on 4 KiB pages). */
  public static final int MAX_LENGTH = 4095;

  private DevnodeCommand() {}

  /**
   * {@code dir <path>}: the cache root, an absolute path on a filesystem with xattrs and SEEK_DATA.
   */
  public static String dir(String absolutePath) {
    if (!absolutePath.startsWith("/")) {
      throw new IllegalArgumentException("cache dir must be absolute: " + absolutePath);
    }
    return check("dir " + absolutePath);
  }

  /** {@code tag <name>}: the fscache cache tag (default "CacheFiles"). */
  public static String tag(String tag) {
    if (tag.isEmpty() || tag.chars().anyMatch(Character::isWhitespace)) {
      throw new IllegalArgumentException("bad cache tag: '" + tag + "'");
    }
    return check("tag " + tag);
  }

  /** {@code bind ondemand}: bind the cache in on-demand mode; read(2) then returns requests. */
  public static String bindOndemand() {
    return "bind ondemand";
  }

  /** {@code copen <msg_id>,<size>}: complete an OPEN; size is the blob's stable size. */
  public static String copen(int msgId, long size) {
    if (size < 0) {
      throw new IllegalArgumentException("object size must be >= 0, got " + size);
    }
    return "copen " + Integer.toUnsignedString(msgId) + "," + size;
  }

  /**
   * {@code copen <msg_id>,-<errno>}: refuse an OPEN; the kernel fails the lookup with that errno.
   */
  public static String copenError(int msgId, int errno) {
    if (errno <= 0 || errno > 4095) {
      throw new IllegalArgumentException("errno out of range: " + errno);
    }
    return "copen " + Integer.toUnsignedString(msgId) + ",-" + errno;
  }

  /**
   * {@code restore}: (6.8+) re-mark every outstanding request NEW so this daemon receives it again.
   */
  public static String restore() {
    return "restore";
  }

  /** {@code inuse <name>}: is object {@code name} in the daemon's working directory in use? */
  public static String inuse(String name) {
    return check("inuse " + plainName(name));
  }

  /** {@code cull <name>}: delete object {@code name} from the daemon's working directory. */
  public static String cull(String name) {
    return check("cull " + plainName(name));
  }

  private static String plainName(String name) {
    if (name.isEmpty() || name.indexOf('/') >= 0) {
      throw new IllegalArgumentException("object name must be a plain file name: '" + name + "'");
    }
    return name;
  }

  private static String check(String cmd) {
    if (cmd.indexOf('\0') >= 0 || cmd.indexOf('\n') >= 0) {
      throw new IllegalArgumentException("devnode command contains NUL or newline");
    }
    if (cmd.getBytes(StandardCharsets.UTF_8).length > MAX_LENGTH) {
      throw new IllegalArgumentException("devnode command longer than " + MAX_LENGTH + " bytes");
    }
    return cmd;
  }
}

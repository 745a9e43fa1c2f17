package dev.lazypull.sys;

import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;

/**
 * Direct-mapped libc entry points of fanotify(7). Raw: return values and errno are checked by
 * {@link Fanotify}. glibc's {@code fanotify_mark} takes the 64-bit mask as one argument on x86-64
 * and aarch64 (the only platforms lazypull ships for), which matches a Java {@code long}.
 */
final class FanotifyCalls {
  static {
    Native.register(FanotifyCalls.class, NativeLibrary.getInstance("c"));
  }

  private FanotifyCalls() {}

  static native int fanotify_init(int flags, int eventFFlags);

  static native int fanotify_mark(int fanotifyFd, int flags, long mask, int dirfd, byte[] pathname);

  static native long write(int fd, long buf, long count);
}

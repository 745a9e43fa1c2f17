package dev.lazypull.sys;

import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * getrlimit/setrlimit of {@code RLIMIT_NOFILE}: the highest descriptor number this process can be
 * handed.
 */
public final class OpenFileLimit {
  private static final int RLIMIT_NOFILE = 7;

  static {
    Native.register(OpenFileLimit.class, NativeLibrary.getInstance("c"));
  }

  private OpenFileLimit() {}

  private static native int getrlimit(int resource, long rlim);

  private static native int setrlimit(int resource, long rlim);

  /** The soft limit (RLIM_INFINITY reads as -1). */
  public static long soft() throws ErrnoException {
    ByteBuffer lim = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder());
    if (getrlimit(RLIMIT_NOFILE, Posix.address(lim)) != 0) {
      throw new ErrnoException("getrlimit", "RLIMIT_NOFILE", Native.getLastError());
    }
    return lim.getLong(0);
  }

  /** Sets the soft limit to {@code n}, keeping the hard limit. */
  public static void setSoft(long n) throws ErrnoException {
    ByteBuffer lim = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder());
    if (getrlimit(RLIMIT_NOFILE, Posix.address(lim)) != 0) {
      throw new ErrnoException("getrlimit", "RLIMIT_NOFILE", Native.getLastError());
    }
    lim.putLong(0, n);
    if (setrlimit(RLIMIT_NOFILE, Posix.address(lim)) != 0) {
      throw new ErrnoException("setrlimit", "RLIMIT_NOFILE", Native.getLastError());
    }
  }
}

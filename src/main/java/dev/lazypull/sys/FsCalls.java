package dev.lazypull.sys;

import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;

/**
 * Direct-mapped libc calls for reading a file tree byte-exactly (names and paths as raw bytes, so
 * names that are not valid in the JVM's file-name charset still work). Raw: checked by {@link
 * PosixFs}.
 */
final class FsCalls {
  static {
    Native.register(FsCalls.class, NativeLibrary.getInstance("c"));
  }

  private FsCalls() {}

  static native int statx(int dirfd, byte[] path, int flags, int mask, long buf);

  static native long getdents64(int fd, long buf, long count);

  static native long readlink(byte[] path, long buf, long size);

  static native long llistxattr(byte[] path, long list, long size);

  static native long lgetxattr(byte[] path, byte[] name, long value, long size);
}

package dev.lazypull.sys;

import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;

/**
 * Direct-mapped libc entry points. Raw: return values and errno are checked by {@link Posix}.
 *
 * <p>Buffers are passed as raw addresses ({@code long}) so that a direct {@code ByteBuffer}'s
 * position can be honoured without allocating a {@code Pointer} per call. Variadic functions
 * ({@code open}, {@code ioctl}, {@code fcntl}) are declared with fixed arity: on x86-64 and aarch64
 * Linux integer varargs travel in the same registers as fixed arguments, so this is safe there (JNA
 * direct mapping has no varargs).
 */
final class LibC {
  static {
    Native.register(LibC.class, NativeLibrary.getInstance("c"));
  }

  private LibC() {}

  static native int open(byte[] path, int flags, int mode);

  static native int close(int fd);

  static native long read(int fd, long buf, long count);

  static native long write(int fd, long buf, long count);

  static native long pread(int fd, long buf, long count, long offset);

  static native long pwrite(int fd, long buf, long count, long offset);

  static native int poll(long fds, long nfds, int timeoutMillis);

  static native long lseek(int fd, long offset, int whence);

  static native int ioctl(int fd, long request, long arg);

  static native int fcntl(int fd, int cmd, long arg);

  static native int fsync(int fd);

  static native int fdatasync(int fd);

  static native int ftruncate(int fd, long length);

  static native int fallocate(int fd, int mode, long offset, long length);

  static native int mount(byte[] source, byte[] target, byte[] fstype, long flags, byte[] data);

  static native int umount2(byte[] target, int flags);

  static native int chdir(byte[] path);

  static native int fchdir(int fd);

  static native int statfs(byte[] path, long buf);

  static native int lstat(byte[] path, long buf);

  static native int geteuid();

  static native int getpid();

  static native int socket(int domain, int type, int protocol);

  static native long sendmsg(int fd, long msghdr, int flags);

  static native long recvmsg(int fd, long msghdr, int flags);

  static native int dup(int fd);

  static native int socketpair(int domain, int type, int protocol, int[] fds);

  static native int shutdown(int fd, int how);

  static native int flock(int fd, int operation);

  static native int prctl(int option, long arg2, long arg3, long arg4, long arg5);

  static native String strerror(int errnum);
}

package dev.lazypull.sys;

import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;

/**
 * pidfd_open(2) and pidfd_getfd(2) (Linux 5.6+): how a process takes a duplicate of a descriptor
 * another process holds — a restarted daemon taking its fanotify group back from the keeper that
 * held it, the keeper taking it from the daemon. Needs PTRACE_MODE_ATTACH_REALCREDS over the other
 * process (root does).
 */
public final class Pidfd {
  /** Syscall numbers: the same on x86-64 and on the generic table (aarch64). */
  private static final long SYS_PIDFD_OPEN = 434;

  private static final long SYS_PIDFD_GETFD = 438;

  static {
    Native.register(Pidfd.class, NativeLibrary.getInstance("c"));
  }

  private Pidfd() {}

  private static native long syscall(long number, long a1, long a2, long a3);

  /**
   * A descriptor in this process open on the same file description as {@code fd} in process {@code
   * pid}.
   */
  public static int dupFrom(int pid, int fd) throws ErrnoException {
    long pidfd = syscall(SYS_PIDFD_OPEN, pid, 0, 0);
    if (pidfd < 0) {
      throw new ErrnoException("pidfd_open", "pid " + pid, Native.getLastError());
    }
    try {
      long got = syscall(SYS_PIDFD_GETFD, pidfd, fd, 0);
      if (got < 0) {
        throw new ErrnoException(
            "pidfd_getfd", "fd " + fd + " of pid " + pid, Native.getLastError());
      }
      return (int) got; // the kernel installs it close-on-exec
    } finally {
      Posix.closeQuietly((int) pidfd);
    }
  }
}

package dev.lazypull.sys;

import java.io.IOException;

/** A failed system call: carries the errno and says which call failed on what, in words. */
public final class ErrnoException extends IOException {
  private static final long serialVersionUID = 1L;
  private final int errno;
  private final String call;

  public ErrnoException(String call, String subject, int errno) {
    super(
        call
            + (subject == null || subject.isEmpty() ? "" : "(" + subject + ")")
            + ": "
            + Errno.describe(errno));
    this.errno = errno;
    this.call = call;
  }

  /** The C errno value, e.g. {@link Errno#ENOENT}. */
  public int errno() {
    return errno;
  }

  /** The system call that failed, e.g. "open". */
  public String call() {
    return call;
  }
}

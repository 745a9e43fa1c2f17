package dev.lazypull.sys;

/** The errno values lazypull reacts to (Linux generic numbering, x86-64 and aarch64). */
public final class Errno {
  public static final int EPERM = 1;
  public static final int ENOENT = 2;
  public static final int EINTR = 4;
  public static final int EIO = 5;
  public static final int ENXIO = 6;
  public static final int EBADF = 9;
  public static final int EAGAIN = 11;
  public static final int ENOMEM = 12;
  public static final int EACCES = 13;
  public static final int EBUSY = 16;
  public static final int EEXIST = 17;
  public static final int ENOTBLK = 15;
  public static final int ENODEV = 19;
  public static final int ENOTDIR = 20;
  public static final int EINVAL = 22;
  public static final int ENOSPC = 28;
  public static final int ERANGE = 34;
  public static final int ENAMETOOLONG = 36;
  public static final int ENODATA = 61;
  public static final int EOVERFLOW = 75;
  public static final int EBADFD = 77;
  public static final int EMSGSIZE = 90;
  public static final int EOPNOTSUPP = 95;
  public static final int ENOBUFS = 105;
  public static final int ESHUTDOWN = 108;
  public static final int ETIMEDOUT = 110;
  public static final int ESTALE = 116;

  private Errno() {}

  /** "ENOENT (No such file or directory)"-style text for logs and errors. */
  public static String describe(int errno) {
    String text;
    try {
      text = LibC.strerror(errno);
    } catch (Throwable t) { // libc unavailable (should not happen on Linux): still say the number
      text = null;
    }
    return "errno " + errno + (text == null ? "" : " (" + text + ")");
  }
}

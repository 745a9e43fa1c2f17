package dev.lazypull.sys;

import com.sun.jna.Native;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * Checked mount(2)/umount2(2) ({@link MountCalls}), and EROFS file-backed mounts: mount(2) of a
 * bootstrap that is a regular file, its data devices given as {@code device=<regular file>}
 * options. (util-linux {@code mount -t erofs FILE DIR} would put the file on a loop device instead,
 * and reads through a loop device raise no fanotify events on the file.)
 */
public final class Mounts {
  public static final long MS_RDONLY = 1;
  public static final int MNT_FORCE = 1;

  /** Lazy unmount: detach now, clean up once the mount is no longer busy. */
  public static final int MNT_DETACH = 2;

  public static final int UMOUNT_NOFOLLOW = 8;

  /** mount(2) copies at most one page of options; the kernel silently cuts a longer string. */
  public static final int MAX_DATA_BYTES = 4095;

  private static final int ENOTBLK = 15;

  private Mounts() {}

  /** mount(2); {@code source}, {@code fstype} and {@code data} may be null. */
  public static void mount(String source, String target, String fstype, long flags, String data)
      throws ErrnoException {
    if (data != null && data.getBytes(StandardCharsets.UTF_8).length > MAX_DATA_BYTES) {
      throw new IllegalArgumentException(
          "mount options of "
              + data.getBytes(StandardCharsets.UTF_8).length
              + " bytes (mount(2) takes at most "
              + MAX_DATA_BYTES
              + ")");
    }
    if (MountCalls.mount(
            cOrNull(source), Posix.cString(target), cOrNull(fstype), flags, cOrNull(data))
        != 0) {
      int errno = Native.getLastError();
      String subject = (fstype == null ? "" : fstype + " ") + source + " on " + target;
      if (errno == ENOTBLK && "erofs".equals(fstype)) {
        subject +=
            "; this kernel cannot mount a regular file as EROFS (CONFIG_EROFS_FS_BACKED_BY_FILE, 6.12+)";
      }
      throw new ErrnoException("mount", subject, errno);
    }
  }

  /** umount2(2) with {@code flags} ({@link #MNT_DETACH}, {@link #UMOUNT_NOFOLLOW}, ...). */
  public static void umount(String target, int flags) throws ErrnoException {
    if (MountCalls.umount2(Posix.cString(target), flags) != 0) {
      throw new ErrnoException("umount2", target, Native.getLastError());
    }
  }

  /**
   * The option string of an EROFS mount with these data devices, in device-table order: {@code
   * device=A,device=B}, then {@code extra} (may be null or empty).
   *
   * @throws IllegalArgumentException for a path the option syntax cannot carry (a comma or NUL) or
   *     a string longer than mount(2) accepts
   */
  public static String erofsOptions(List<Path> devices, String extra) {
    StringBuilder sb = new StringBuilder();
    for (Path d : devices) {
      String s = d.toString();
      if (s.indexOf(',') >= 0 || s.indexOf('\0') >= 0) {
        throw new IllegalArgumentException("an EROFS device path cannot contain ',' or NUL: " + s);
      }
      if (sb.length() > 0) {
        sb.append(',');
      }
      sb.append("device=").append(s);
    }
    if (extra != null && !extra.isEmpty()) {
      if (sb.length() > 0) {
        sb.append(',');
      }
      sb.append(extra);
    }
    String data = sb.toString();
    if (data.getBytes(StandardCharsets.UTF_8).length > MAX_DATA_BYTES) {
      throw new IllegalArgumentException(
          devices.size()
              + " device paths make "
              + data.length()
              + " bytes of mount options (mount(2) takes at most "
              + MAX_DATA_BYTES
              + "): use shorter paths");
    }
    return data;
  }

  /**
   * Mounts the EROFS image whose metadata is the regular file {@code bootstrap} read-only at {@code
   * target}, its data devices the regular files {@code devices} (file-backed mode, Linux 6.12+).
   */
  public static void mountErofsFile(Path bootstrap, Path target, List<Path> devices)
      throws ErrnoException {
    mount(bootstrap.toString(), target.toString(), "erofs", MS_RDONLY, erofsOptions(devices, null));
  }

  private static byte[] cOrNull(String s) {
    return s == null ? null : Posix.cString(s);
  }
}

package dev.lazypull.fscache;

import dev.lazypull.frontend.SetupException;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.KernelConfig;
import dev.lazypull.sys.Posix;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * Opens {@code /dev/cachefiles} and binds it in on-demand mode on a cache directory, turning every
 * way this can fail into a {@link SetupException} that says what is wrong and what to do.
 */
public final class CacheBinder {
  private static final Logger LOG = Logger.getLogger(CacheBinder.class.getName());

  /** What EROFS over fscache on-demand mode needs. */
  public static final List<String> FSCACHE_OPTIONS =
      List.of(
          "CONFIG_CACHEFILES",
          "CONFIG_CACHEFILES_ONDEMAND",
          "CONFIG_EROFS_FS",
          "CONFIG_EROFS_FS_ONDEMAND");

  public static final String NBD_HINT =
      "on kernels without fscache on-demand mode, serve the image as a block "
          + "device instead: `lazypull nbd IMAGE` (kernel >= 6.4 mounts the flattened EROFS device)";

  private CacheBinder() {}

  /** Checks that we are root and the cache dir is usable, then opens and binds the devnode. */
  public static KernelDevnode bind(String devnodePath, Path cacheDir, String tag)
      throws SetupException {
    requireRoot();
    checkCacheDir(cacheDir);
    KernelDevnode devnode = open(devnodePath);
    try {
      send(devnode, DevnodeCommand.dir(cacheDir.toAbsolutePath().toString()), "set the cache dir");
      send(devnode, DevnodeCommand.tag(tag), "set the cache tag");
      try {
        devnode.command(DevnodeCommand.bindOndemand());
      } catch (ErrnoException e) {
        if (e.errno() == Errno.EINVAL || e.errno() == Errno.EOPNOTSUPP) {
          throw new SetupException(
              "the kernel's cachefiles has no on-demand mode (`bind ondemand` failed: "
                  + Errno.describe(e.errno())
                  + "); "
                  + describeMissingOptions()
                  + "; "
                  + NBD_HINT,
              e);
        }
        if (e.errno() == Errno.EBUSY) {
          throw new SetupException(devnodePath + " is already bound to a cache", e);
        }
        throw new SetupException(
            "`bind ondemand` on " + cacheDir + " failed: " + e.getMessage(), e);
      } catch (IOException e) {
        throw new SetupException("`bind ondemand` failed: " + e.getMessage(), e);
      }
      return devnode;
    } catch (SetupException e) {
      devnode.close();
      throw e;
    }
  }

  /**
   * Takes over a devnode that a previous daemon bound (handed back by the service manager's fd
   * store) and asks the kernel to re-deliver every request that daemon had taken but not answered
   * ({@code restore}, 6.8+). The kernel re-sends OPENs for objects whose anon fds died with the old
   * process before their READs.
   */
  public static KernelDevnode restore(int fd) throws SetupException {
    requireRoot();
    KernelDevnode devnode = KernelDevnode.adopt(fd);
    try {
      Posix.setCloseOnExec(fd);
      devnode.command(DevnodeCommand.restore());
      return devnode;
    } catch (ErrnoException e) {
      devnode.close();
      if (e.errno() == Errno.EOPNOTSUPP || e.errno() == Errno.EINVAL) {
        throw new SetupException(
            "the kernel cannot restore on-demand requests (`restore` failed: "
                + Errno.describe(e.errno())
                + "); daemon failover needs Linux >= 6.8 or a backported stable kernel",
            e);
      }
      throw new SetupException(
          "`restore` on the stored devnode fd " + fd + " failed: " + e.getMessage(), e);
    } catch (IOException e) {
      devnode.close();
      throw new SetupException("`restore` failed: " + e.getMessage(), e);
    }
  }

  private static void send(KernelDevnode devnode, String command, String what)
      throws SetupException {
    try {
      devnode.command(command);
    } catch (IOException e) {
      throw new SetupException("cannot " + what + " (`" + command + "`): " + e.getMessage(), e);
    }
  }

  static void requireRoot() throws SetupException {
    if (Posix.geteuid() != 0) {
      throw new SetupException(
          "lazypull daemon must run as root: /dev/cachefiles needs CAP_SYS_ADMIN");
    }
  }

  /**
   * cachefiles stores data in sparse files, its coherency data in {@code user.CacheFiles.cache}
   * xattrs, and asks SEEK_DATA what is present: tmpfs and ramfs cannot do that reliably, and no
   * xattrs means no cache.
   */
  public static void checkCacheDir(Path cacheDir) throws SetupException {
    try {
      Files.createDirectories(cacheDir);
      Files.setPosixFilePermissions(cacheDir, PosixFilePermissions.fromString("rwx------"));
    } catch (IOException e) {
      throw new SetupException(
          "cannot create the cache dir " + cacheDir + ": " + e.getMessage(), e);
    }
    long type;
    try {
      type = Posix.filesystemType(cacheDir.toString());
    } catch (ErrnoException e) {
      throw new SetupException(
          "cannot statfs the cache dir " + cacheDir + ": " + e.getMessage(), e);
    }
    if (type == Posix.TMPFS_MAGIC || type == Posix.RAMFS_MAGIC) {
      throw new SetupException(
          "the cache dir "
              + cacheDir
              + " is on "
              + (type == Posix.TMPFS_MAGIC ? "tmpfs" : "ramfs")
              + ", which cachefiles cannot use; put --cache-dir on a disk filesystem with xattrs (ext4, xfs, btrfs)");
    }
    try {
      UserDefinedFileAttributeView xattrs =
          Files.getFileAttributeView(cacheDir, UserDefinedFileAttributeView.class);
      if (xattrs == null) {
        throw new IOException("no user xattr support");
      }
      xattrs.write("lazypull.probe", ByteBuffer.wrap("1".getBytes(StandardCharsets.US_ASCII)));
      xattrs.delete("lazypull.probe");
    } catch (IOException e) {
      throw new SetupException(
          "the cache dir "
              + cacheDir
              + " does not support user xattrs ("
              + e.getMessage()
              + "), which cachefiles needs; use ext4, xfs or btrfs",
          e);
    }
  }

  private static KernelDevnode open(String path) throws SetupException {
    if (!Files.exists(Path.of(path))) {
      loadModule("cachefiles");
    }
    try {
      return KernelDevnode.open(path);
    } catch (ErrnoException e) {
      switch (e.errno()) {
        case Errno.ENOENT, Errno.ENODEV, Errno.ENXIO ->
            throw new SetupException(
                path
                    + " does not exist: the "
                    + "cachefiles module is not loaded or not built; "
                    + describeMissingOptions()
                    + "; "
                    + NBD_HINT,
                e);
        case Errno.EBUSY ->
            throw new SetupException(
                path
                    + " is busy: another cache daemon holds it (is "
                    + "cachefilesd running? stop it with `systemctl stop cachefilesd`), or another lazypull daemon is "
                    + "already running",
                e);
        case Errno.EPERM, Errno.EACCES ->
            throw new SetupException(
                "cannot open "
                    + path
                    + ": "
                    + e.getMessage()
                    + "; the daemon needs root (CAP_SYS_ADMIN)",
                e);
        default -> throw new SetupException("cannot open " + path + ": " + e.getMessage(), e);
      }
    }
  }

  private static void loadModule(String module) {
    try {
      Process p =
          new ProcessBuilder("modprobe", module)
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .start();
      if (!p.waitFor(10, TimeUnit.SECONDS)) {
        p.destroyForcibly();
      }
    } catch (IOException e) {
      LOG.fine("modprobe " + module + ": " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** "this kernel is built without …" for fscache mode, or why that cannot be said. */
  public static String describeMissingOptions() {
    return KernelConfig.describeMissing(FSCACHE_OPTIONS);
  }
}

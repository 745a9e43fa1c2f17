package dev.lazypull.fanotify;

import dev.lazypull.erofs.ErofsNode;
import dev.lazypull.erofs.ErofsWriter;
import dev.lazypull.erofs.FileType;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Mounts;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;

/**
 * Says whether the fanotify front end can work on this host, and if not, what is missing, in words:
 * a pre-content group whose marks on a file in the cache directory raise events that can be
 * answered ({@code FAN_PRE_ACCESS}, Linux 6.14+, {@code CONFIG_FANOTIFY_ACCESS_PERMISSIONS},
 * CAP_SYS_ADMIN, a filesystem that allows pre-content events), whether denials can carry an errno
 * ({@code FAN_DENY_ERRNO}), and whether EROFS mounts a regular file ({@code
 * CONFIG_EROFS_FS_BACKED_BY_FILE}, 6.12+; proven by a probe mount).
 */
public final class FanotifySupport {
  private static final int ENOSYS = 38;
  private static final int EMFILE = 24;
  private static final int ENOTBLK = 15;
  private static final int EVENT_WAIT_MILLIS = 5000;

  private FanotifySupport() {}

  /** One capability: whether it works, and what was found. */
  public record Check(boolean ok, String detail) {}

  /** What {@link #probe} found. */
  public record Report(
      String kernelRelease, Check preContent, Check denyErrno, Check fileBackedErofs) {
    /**
     * Whether the fanotify front end can run (FAN_DENY_ERRNO is an improvement, not a requirement).
     */
    public boolean usable() {
      return preContent.ok && fileBackedErofs.ok;
    }

    /** One line for logs, `status` and errors. */
    public String summary() {
      if (usable()) {
        return "fanotify front end available (kernel "
            + kernelRelease
            + "; denials "
            + (denyErrno.ok ? "carry EIO" : "are EPERM: " + denyErrno.detail)
            + ")";
      }
      List<String> missing = new ArrayList<>();
      if (!preContent.ok) {
        missing.add(preContent.detail);
      }
      if (!fileBackedErofs.ok) {
        missing.add(fileBackedErofs.detail);
      }
      return "fanotify front end unavailable on kernel "
          + kernelRelease
          + ": "
          + String.join("; ", missing);
    }
  }

  /**
   * The running kernel: release, version, and its build config when the host publishes it (else
   * empty).
   */
  public record Kernel(String release, int major, int minor, Map<String, String> config) {
    public boolean atLeast(int wantMajor, int wantMinor) {
      return major > wantMajor || (major == wantMajor && minor >= wantMinor);
    }

    /** "y", "m", "n" (is not set), or null when the config is not known. */
    public String option(String name) {
      if (config.isEmpty()) {
        return null;
      }
      return config.getOrDefault(name, "n");
    }

    /** Parses "6.18.44-foo" style releases; unknown parts are 0. */
    public static Kernel of(String release, Map<String, String> config) {
      Matcher m = Pattern.compile("^(\\d+)\\.(\\d+)").matcher(release);
      return m.find()
          ? new Kernel(release, Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)), config)
          : new Kernel(release, 0, 0, config);
    }

    /** The running kernel, its config from /proc/config.gz or /boot/config-RELEASE when present. */
    public static Kernel running() {
      String release;
      try {
        release = Files.readString(Path.of("/proc/sys/kernel/osrelease")).trim();
      } catch (IOException e) {
        release = System.getProperty("os.version", "unknown");
      }
      return of(release, readConfig(release));
    }
  }

  /**
   * Probes this host; {@code cacheDir} is where the cache files will live (its filesystem matters).
   */
  /**
   * Whether {@code group}'s kernel takes {@code FAN_DENY_ERRNO} answers (6.14+): an answer to a
   * number no event waits under is ENOENT when it does, EINVAL when it does not.
   */
  public static boolean denyErrnoWorks(FanotifyGroup group) {
    try {
      group.respondIfPending(Integer.MAX_VALUE, FanotifyResponse.denyErrno(Errno.EIO));
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  public static Report probe(Path cacheDir) {
    Kernel kernel = Kernel.running();
    Path work = null;
    try {
      work = Files.createTempDirectory(cacheDir, ".fanotify-probe-");
      Check[] fan = probeFanotify(kernel, work);
      Check erofs = probeErofs(kernel, work);
      return new Report(kernel.release(), fan[0], fan[1], erofs);
    } catch (IOException e) {
      Check c = new Check(false, "cannot probe in " + cacheDir + ": " + e.getMessage());
      return new Report(kernel.release(), c, c, c);
    } finally {
      if (work != null) {
        deleteTree(work);
      }
    }
  }

  private static Check[] probeFanotify(Kernel kernel, Path work) throws IOException {
    Path file = work.resolve("marked");
    Files.writeString(file, "lazypull");
    KernelFanotifyGroup group;
    try {
      group = KernelFanotifyGroup.open();
    } catch (ErrnoException e) {
      Check c = new Check(false, explainInit(e.errno(), kernel));
      return new Check[] {c, new Check(false, "no fanotify group")};
    }
    try {
      try {
        group.mark(file);
      } catch (ErrnoException e) {
        return new Check[] {
          new Check(false, explainMark(e.errno(), kernel, work)),
          new Check(false, "no pre-content events")
        };
      }
      Check events = roundTrip(group, file);
      Check deny;
      try {
        group.respond(Integer.MAX_VALUE, FanotifyResponse.denyErrno(Errno.EIO));
        deny = new Check(false, "a response to no event was accepted");
      } catch (ErrnoException e) {
        deny =
            e.errno() == Errno.ENOENT
                ? new Check(true, "FAN_DENY_ERRNO accepted")
                : e.errno() == Errno.EINVAL
                    ? new Check(
                        false,
                        "the kernel refuses FAN_DENY_ERRNO (Linux 6.14+): a failed fetch can only be"
                            + " answered FAN_DENY, and the reader gets EPERM")
                    : new Check(false, "FAN_DENY_ERRNO probe: " + e.getMessage());
      }
      return new Check[] {events, deny};
    } finally {
      group.close(); // allows the probe's own read if it is still waiting
    }
  }

  /**
   * Reads the marked file in another thread, answers its event ALLOW, and checks the read
   * completed.
   */
  private static Check roundTrip(KernelFanotifyGroup group, Path file) {
    CompletableFuture<String> reader =
        CompletableFuture.supplyAsync(
            () -> {
              try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                ByteBuffer b = ByteBuffer.allocate(8);
                ch.read(b, 0);
                return new String(b.array(), 0, b.position(), StandardCharsets.US_ASCII);
              } catch (IOException e) {
                return "read failed: " + e.getMessage();
              }
            });
    ByteBuffer buf = ByteBuffer.allocateDirect(FanotifyDecoder.READ_BUFFER_SIZE);
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(EVENT_WAIT_MILLIS);
    try {
      while (System.nanoTime() < deadline) {
        if (!group.awaitEvents(100)) {
          continue;
        }
        for (FanotifyMessage m : group.readBatch(buf)) {
          if (m.fd() >= 0) {
            group.finish(m.fd(), FanotifyResponse.ALLOW);
          }
          if (m instanceof FanotifyMessage.Malformed bad) {
            return new Check(
                false, "the kernel sent an event this decoder cannot read: " + bad.reason());
          }
          FanotifyMessage.Event e = (FanotifyMessage.Event) m;
          if (!e.hasRange()) {
            return new Check(
                false, "pre-content events come without a range record (Linux 6.14+ sends one)");
          }
          String got = reader.get(EVENT_WAIT_MILLIS, TimeUnit.MILLISECONDS);
          return "lazypull".equals(got)
              ? new Check(true, "FAN_PRE_ACCESS events with ranges")
              : new Check(false, "the probe read after FAN_ALLOW returned " + got);
        }
      }
      return new Check(
          false,
          "a FAN_PRE_ACCESS mark was accepted but a read raised no event within "
              + EVENT_WAIT_MILLIS
              + " ms");
    } catch (Exception e) {
      return new Check(false, "pre-content event round trip failed: " + e);
    }
  }

  private static Check probeErofs(Kernel kernel, Path work) {
    String backed = kernel.option("CONFIG_EROFS_FS_BACKED_BY_FILE");
    Path boot = work.resolve("boot.erofs");
    Path device = work.resolve("device");
    Path mnt = work.resolve("mnt");
    try {
      Files.createDirectory(mnt);
      try (RandomAccessFile f = new RandomAccessFile(device.toFile(), "rw")) {
        f.setLength(ErofsWriter.BLOCK_SIZE);
      }
      try (FileChannel out =
          FileChannel.open(
              boot, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
        ErofsWriter.write(
            new ErofsNode(FileType.DIRECTORY),
            new ErofsWriter.Options(20, 0, 0),
            List.of(new ErofsWriter.Device("0".repeat(64), ErofsWriter.BLOCK_SIZE)),
            out);
      }
    } catch (IOException | RuntimeException e) {
      return new Check(false, "cannot write the probe image: " + e);
    }
    try {
      Mounts.mountErofsFile(boot, mnt, List.of(device));
    } catch (ErrnoException e) {
      return new Check(false, explainMount(e.errno(), kernel, backed));
    }
    try {
      Mounts.umount(mnt.toString(), 0);
    } catch (ErrnoException e) {
      try {
        Mounts.umount(mnt.toString(), Mounts.MNT_DETACH);
      } catch (ErrnoException ignored) {
        // reported below
      }
      return new Check(
          true, "EROFS file-backed mount works, but the probe's umount failed: " + e.getMessage());
    }
    return new Check(true, "EROFS mounts regular files (with device= regular files)");
  }

  static String explainInit(int errno, Kernel kernel) {
    switch (errno) {
      case ENOSYS:
        return "this kernel has no fanotify (CONFIG_FANOTIFY)";
      case Errno.EPERM:
        return "a fanotify pre-content group needs CAP_SYS_ADMIN: run the daemon as root";
      case EMFILE:
        return "too many fanotify groups for this user (sysctl fs.fanotify.max_user_groups)";
      case Errno.EINVAL:
        return "kernel "
            + kernel.release()
            + " refuses a pre-content fanotify group"
            + (kernel.atLeast(6, 14) ? "" : " (pre-content events need Linux 6.14+)");
      default:
        return "fanotify_init: " + Errno.describe(errno);
    }
  }

  static String explainMark(int errno, Kernel kernel, Path dir) {
    switch (errno) {
      case Errno.EINVAL:
        if (!kernel.atLeast(6, 14)) {
          return "kernel "
              + kernel.release()
              + " predates pre-content events (FAN_PRE_ACCESS, Linux 6.14)";
        }
        String perm = kernel.option("CONFIG_FANOTIFY_ACCESS_PERMISSIONS");
        if (perm != null && !"y".equals(perm)) {
          return "kernel "
              + kernel.release()
              + " is built without CONFIG_FANOTIFY_ACCESS_PERMISSIONS";
        }
        return "kernel "
            + kernel.release()
            + " refuses FAN_PRE_ACCESS marks (needs Linux 6.14+ built with"
            + " CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y)";
      case Errno.EOPNOTSUPP:
        return "the filesystem of "
            + dir.getParent()
            + " does not allow pre-content events (ext4, xfs and btrfs"
            + " do; tmpfs does not): put the cache directory on one that does";
      case Errno.EPERM:
      case Errno.EACCES:
        return "marking files for pre-content events needs CAP_SYS_ADMIN and read access: run the daemon as root";
      case ENOSYS:
        return "this kernel has no fanotify (CONFIG_FANOTIFY)";
      default:
        return "fanotify_mark(FAN_PRE_ACCESS): " + Errno.describe(errno);
    }
  }

  static String explainMount(int errno, Kernel kernel, String backedByFile) {
    switch (errno) {
      case Errno.ENODEV:
        return "this kernel has no EROFS (CONFIG_EROFS_FS, or modprobe erofs)";
      case ENOTBLK:
        return "EROFS cannot mount a regular file on kernel "
            + kernel.release()
            + " (needs Linux 6.12+ with"
            + " CONFIG_EROFS_FS_BACKED_BY_FILE=y"
            + ("n".equals(backedByFile) ? ", which is not set" : "")
            + ")";
      case Errno.EPERM:
        return "mounting needs CAP_SYS_ADMIN: run the daemon as root";
      default:
        return "probe mount of an EROFS file failed: "
            + Errno.describe(errno)
            + ("n".equals(backedByFile) ? " (CONFIG_EROFS_FS_BACKED_BY_FILE is not set)" : "");
    }
  }

  static Map<String, String> parseConfig(List<String> lines) {
    Map<String, String> config = new HashMap<>();
    Pattern set = Pattern.compile("^(CONFIG_[A-Za-z0-9_]+)=(.*)$");
    Pattern unset = Pattern.compile("^# (CONFIG_[A-Za-z0-9_]+) is not set$");
    for (String line : lines) {
      Matcher m = set.matcher(line);
      if (m.matches()) {
        config.put(m.group(1), m.group(2));
        continue;
      }
      m = unset.matcher(line);
      if (m.matches()) {
        config.put(m.group(1), "n");
      }
    }
    return config;
  }

  private static Map<String, String> readConfig(String release) {
    try {
      Path gz = Path.of("/proc/config.gz");
      if (Files.isReadable(gz)) {
        try (InputStream in = new GZIPInputStream(Files.newInputStream(gz));
            BufferedReader r =
                new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
          return parseConfig(r.lines().toList());
        }
      }
      Path boot = Path.of("/boot/config-" + release);
      if (Files.isReadable(boot)) {
        return parseConfig(Files.readAllLines(boot, StandardCharsets.UTF_8));
      }
    } catch (IOException | RuntimeException e) {
      // unknown config: the probes still decide
    }
    return Map.of();
  }

  private static void deleteTree(Path dir) {
    Path mnt = dir.resolve("mnt");
    if (Files.isDirectory(mnt)) {
      try {
        Mounts.umount(mnt.toString(), Mounts.MNT_DETACH);
      } catch (ErrnoException ignored) {
        // not mounted: the normal case
      }
    }
    try (Stream<Path> s = Files.walk(dir)) {
      s.sorted(Comparator.reverseOrder())
          .forEach(
              p -> {
                try {
                  Files.deleteIfExists(p);
                } catch (IOException ignored) {
                  // best effort: a hidden temp dir
                }
              });
    } catch (IOException ignored) {
      // best effort
    }
  }
}

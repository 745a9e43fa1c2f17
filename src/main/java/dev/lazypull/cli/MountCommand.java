package dev.lazypull.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.control.ControlClient;
import dev.lazypull.fscache.CacheBinder;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Posix;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull mount IMAGE MOUNTPOINT}: register with the daemon, which says how to mount the
 * image with its front end (fscache: {@code none} with {@code fsid=}; fanotify: the bootstrap file
 * with {@code device=} data files, prepared and marked first), then mount(2) here, in the caller's
 * mount namespace.
 */
@Command(
    name = "mount",
    mixinStandardHelpOptions = true,
    description =
        "Register IMAGE with the running daemon and mount it lazily at MOUNTPOINT (fscache mode: "
            + "mount -t erofs none MOUNTPOINT -o fsid=…; fanotify mode: an EROFS file-backed mount of the image's "
            + "cached bootstrap, its data files filled on demand).")
final class MountCommand implements Callable<Integer> {
  @Mixin SocketOption socket;

  @Option(
      names = "--fsid",
      paramLabel = "ID",
      description =
          "fsid to mount with (default: derived from the "
              + "image's manifest digest, so the same image reuses its cache).")
  String fsid;

  @Option(
      names = "--domain",
      paramLabel = "ID",
      description =
          "Shared domain_id: images mounted in one domain "
              + "share one cache file per common blob.")
  String domain;

  @Option(
      names = "--prefetch",
      paramLabel = "none|all|profile",
      description =
          "What to prefetch whenever this image is mounted (default: the daemon's policy).")
  String prefetch;

  @Option(names = "--replace", description = "Rebind an fsid already registered for another image.")
  boolean replace;

  @Option(
      names = "--plain-http",
      description =
          "The daemon talks plain HTTP (no TLS) to this image's registry, for "
              + "this image and after a daemon restart too (kept with the image). Loopback registries (localhost, "
              + "127.0.0.0/8, ::1) need no flag: plain HTTP is used when they do not speak TLS.")
  boolean plainHttp;

  @Option(
      names = "--platform",
      paramLabel = "OS/ARCH[/VARIANT]",
      description =
          "Which image of a multi-platform index the daemon mounts (default: the daemon's "
              + "registry.platform, linux/amd64).")
  String platform;

  @Option(
      names = "--index-locally",
      description =
          "An ordinary OCI image (gzip or tar layers) without a lazypull "
              + "index: the daemon reads its layers once and builds the index on this host (kept in its local index store) "
              + "instead of refusing it. Without it such an image must be indexed first: `lazypull index IMAGE --push`.")
  boolean indexLocally;

  @Parameters(
      index = "0",
      paramLabel = "IMAGE",
      description = "oci:DIR[:TAG] or HOST/REPO[:TAG|@DIGEST].")
  String image;

  @Parameters(index = "1", paramLabel = "MOUNTPOINT")
  Path mountpoint;

  @Override
  public Integer call() throws Exception {
    if (!Files.isDirectory(mountpoint)) {
      System.err.println("lazypull mount: " + mountpoint + " is not a directory");
      return 1;
    }
    ObjectNode req = ControlClient.request("register").put("image", image).put("replace", replace);
    if (indexLocally) {
      req.put("indexLocally", true);
    }
    try {
      RegistryOptions.putPull(req, plainHttp, platform);
    } catch (IllegalArgumentException e) {
      System.err.println("lazypull mount: --platform: " + e.getMessage());
      return 2;
    }
    if (fsid != null) {
      req.put("fsid", fsid);
    }
    if (domain != null) {
      req.put("domain", domain);
    }
    if (prefetch != null) {
      req.put("prefetch", prefetch);
    }
    ControlClient client = new ControlClient(socket.socket);
    JsonNode reply = client.call(req);
    JsonNode mount = reply.path("mount");
    String registered = reply.path("image").path("fsid").asText(null);
    String source = mount.path("source").asText();
    String options = mount.path("options").asText();
    String frontend = mount.path("frontend").asText("fscache");
    try {
      Posix.mount(
          source, mountpoint.toAbsolutePath().toString(), "erofs", Posix.MS_RDONLY, options);
    } catch (ErrnoException e) {
      System.err.println(
          "lazypull mount: mount -t erofs "
              + source
              + " "
              + mountpoint
              + " -o "
              + options
              + " failed: "
              + Errno.describe(e.errno())
              + (frontend.equals("fanotify") ? explainFileBacked(e.errno()) : explain(e.errno())));
      if (frontend.equals("fanotify")) { // let the daemon stop serving what nobody mounts
        ObjectNode failed = ControlClient.request("unmounted");
        client.call(registered == null ? failed : failed.put("fsid", registered));
      }
      return 1;
    }
    if (frontend.equals("fanotify") && registered != null) {
      try { // the daemon keeps a prepared image until its mount is made; then an umount releases it
        // at once
        client.call(ControlClient.request("mounted").put("fsid", registered));
      } catch (IOException e) { // a daemon without the op releases after its grace period
      }
    }
    System.out.println("mounted " + image + " at " + mountpoint + " (" + frontend + ")");
    return 0;
  }

  static String explainFileBacked(int errno) {
    switch (errno) {
      case Errno.ENOTBLK:
        return "; this kernel cannot mount EROFS from a regular file (CONFIG_EROFS_FS_BACKED_BY_FILE, Linux 6.12+)";
      case Errno.ENODEV:
        return "; the kernel has no erofs filesystem (modprobe erofs)";
      case Errno.EPERM:
        return "; mounting needs root";
      default:
        return "; see `dmesg` for the kernel's reason";
    }
  }

  static String explain(int errno) {
    switch (errno) {
      case Errno.ENODEV:
        return "; the kernel has no erofs filesystem (modprobe erofs)";
      case Errno.EINVAL:
        return "; the kernel rejected the options: erofs may lack fscache mode ("
            + CacheBinder.describeMissingOptions()
            + "), or the image's device count does not match; "
            + "see `dmesg`. "
            + CacheBinder.NBD_HINT;
      case Errno.EBUSY:
      case Errno.EEXIST:
        return "; this fsid (or volume) is already mounted; mount the image once, or use --domain to share blobs";
      case Errno.ENOENT:
        return "; the daemon did not know the image (is the daemon the one bound to /dev/cachefiles?)";
      case Errno.EPERM:
        return "; mounting needs root";
      default:
        return "; see `dmesg` for the kernel's reason";
    }
  }
}

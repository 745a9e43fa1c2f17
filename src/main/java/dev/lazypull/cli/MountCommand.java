package dev.lazypull.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.control.ControlClient;
import dev.lazypull.fscache.CacheBinder;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Posix;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code lazypull mount IMAGE MOUNTPOINT}: register with the daemon, then mount erofs in fscache mode. */
@Command(name = "mount", mixinStandardHelpOptions = true,
    description = "Register IMAGE with the running daemon and mount it lazily at MOUNTPOINT "
        + "(mount -t erofs none MOUNTPOINT -o fsid=…).")
final class MountCommand implements Callable<Integer> {
  @Mixin SocketOption socket;

  @Option(names = "--fsid", paramLabel = "ID", description = "fsid to mount with (default: derived from the "
      + "image's manifest digest, so the same image reuses its cache).")
  String fsid;

  @Option(names = "--domain", paramLabel = "ID", description = "Shared domain_id: images mounted in one domain "
      + "share one cache file per common blob.")
  String domain;

  @Option(names = "--prefetch", paramLabel = "none|all|profile",
      description = "What to prefetch whenever this image is mounted (default: the daemon's policy).")
  String prefetch;

  @Option(names = "--replace", description = "Rebind an fsid already registered for another image.")
  boolean replace;

  @Parameters(index = "0", paramLabel = "IMAGE", description = "oci:DIR[:TAG] or HOST/REPO[:TAG|@DIGEST].")
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
    if (fsid != null) {
      req.put("fsid", fsid);
    }
    if (domain != null) {
      req.put("domain", domain);
    }
    if (prefetch != null) {
      req.put("prefetch", prefetch);
    }
    JsonNode reply = new ControlClient(socket.socket).call(req);
    String options = reply.path("image").path("mountOptions").asText();
    String id = reply.path("image").path("fsid").asText();
    try {
      Posix.mount("none", mountpoint.toAbsolutePath().toString(), "erofs", Posix.MS_RDONLY, options);
    } catch (ErrnoException e) {
      System.err.println("lazypull mount: mount -t erofs none " + mountpoint + " -o " + options + " failed: "
          + Errno.describe(e.errno()) + explain(e.errno()));
      return 1;
    }
    System.out.println("mounted " + image + " at " + mountpoint + " (" + options + ")");
    return 0;
  }

  static String explain(int errno) {
    switch (errno) {
      case Errno.ENODEV:
        return "; the kernel has no erofs filesystem (modprobe erofs)";
      case Errno.EINVAL:
        return "; the kernel rejected the options: erofs may lack fscache mode ("
            + CacheBinder.describeMissingOptions() + "), or the image's device count does not match; "
            + "see `dmesg`. " + CacheBinder.NBD_HINT;
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

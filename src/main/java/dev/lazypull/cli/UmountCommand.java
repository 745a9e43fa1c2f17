package dev.lazypull.cli;

import dev.lazypull.control.ControlClient;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Posix;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull umount MOUNTPOINT}. The image stays registered, so a later mount reuses its
 * cache; the daemon is told, so it stops serving (in fanotify mode: watching) what no mount uses
 * any more.
 */
@Command(
    name = "umount",
    mixinStandardHelpOptions = true,
    description =
        "Unmount a lazypull mount. The image stays registered; its cached data stays on disk.")
final class UmountCommand implements Callable<Integer> {
  @Mixin SocketOption socket;

  @Option(
      names = {"-l", "--lazy"},
      description = "Detach now, clean up when no longer busy (MNT_DETACH).")
  boolean lazy;

  @Parameters(index = "0", paramLabel = "MOUNTPOINT")
  Path mountpoint;

  @Override
  public Integer call() {
    try {
      Posix.umount2(mountpoint.toAbsolutePath().toString(), lazy ? Posix.MNT_DETACH : 0);
    } catch (ErrnoException e) {
      System.err.println("lazypull umount: " + e.getMessage());
      return 1;
    }
    try {
      new ControlClient(socket.socket).call(ControlClient.request("unmounted"));
    } catch (
        IOException
            e) { // no daemon: nothing to tell; it releases unmounted images itself when it runs
    }
    return 0;
  }
}

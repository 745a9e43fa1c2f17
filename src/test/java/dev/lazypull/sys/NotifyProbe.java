package dev.lazypull.sys;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Run under fdstore-supervisor by {@link SdNotifyTest}: the first run parks an fd in the store and
 * fails; the restarted run finds it in LISTEN_FDS and prints what it points at.
 */
public final class NotifyProbe {
  public static void main(String[] args) throws Exception {
    Map<String, Integer> passed = ListenFds.fromEnvironment();
    SdNotify notify = SdNotify.fromEnvironment();
    if (passed.isEmpty()) {
      int fd = Posix.open(args[0], Posix.O_RDONLY | Posix.O_CLOEXEC, 0);
      notify.send("FDSTORE=1\nFDNAME=probe", fd);
      notify.send("READY=1\nSTATUS=first run");
      System.exit(3); // fail: the supervisor restarts us with the stored fd
    }
    int fd = passed.get("probe");
    System.out.println(
        "PROBE fd=" + fd + " target=" + Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)));
    notify.send("READY=1\nSTATUS=second run");
  }
}

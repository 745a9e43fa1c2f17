package dev.lazypull.app;

import dev.lazypull.sys.DaemonThreads;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.SdNotify;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.logging.Logger;

/**
 * Talks to systemd (or any service manager speaking sd_notify): READY=1 once the devnode is bound
 * and images are registered, STATUS= lines, WATCHDOG=1 while the poll loop is healthy, and
 * FDSTORE=1 to park the devnode fd so a restarted daemon can take over without breaking mounts. A
 * no-op when {@code $NOTIFY_SOCKET} is unset.
 */
public final class ServiceNotifier implements AutoCloseable {
  /** The fd-store name of the /dev/cachefiles descriptor. */
  public static final String DEVNODE_FDNAME = "cachefiles";

  private static final Logger LOG = Logger.getLogger(ServiceNotifier.class.getName());

  private final SdNotify notify;
  private ScheduledExecutorService watchdog;

  private ServiceNotifier(SdNotify notify) {
    this.notify = notify;
  }

  public static ServiceNotifier fromEnvironment() {
    return new ServiceNotifier(SdNotify.fromEnvironment());
  }

  public boolean active() {
    return notify != null;
  }

  private void send(String state, int... fds) {
    if (notify == null) {
      return;
    }
    try {
      notify.send(state, fds);
    } catch (ErrnoException | RuntimeException e) {
      LOG.warning("sd_notify(" + state.replace('\n', ' ') + "): " + e.getMessage());
    }
  }

  /**
   * Parks the bound devnode fd in the service manager's fd store (needs FileDescriptorStoreMax= ≥
   * 1).
   */
  public void storeDevnode(int fd) {
    storeFd(DEVNODE_FDNAME, fd);
  }

  /**
   * Parks {@code fd} in the service manager's fd store under {@code name} (FileDescriptorStoreMax=
   * ≥ 1).
   */
  public void storeFd(String name, int fd) {
    send("FDSTORE=1\nFDNAME=" + name, fd);
  }

  /** Drops the fd stored under {@code name} (a clean stop: nothing depends on it any more). */
  public void removeFd(String name) {
    send("FDSTOREREMOVE=1\nFDNAME=" + name);
  }

  public void ready(String status) {
    send("READY=1\nSTATUS=" + status);
  }

  public void status(String status) {
    send("STATUS=" + status);
  }

  public void stopping() {
    send("STOPPING=1");
  }

  /**
   * Starts WATCHDOG=1 pings every WATCHDOG_USEC/2 while {@code healthy} holds (a stuck poll loop
   * then gets the service restarted). No-op without WATCHDOG_USEC for this process.
   */
  public void startWatchdog(BooleanSupplier healthy) {
    Duration interval =
        watchdogInterval(
            System.getenv("WATCHDOG_USEC"),
            System.getenv("WATCHDOG_PID"),
            ProcessHandle.current().pid());
    if (notify == null || interval == null) {
      return;
    }
    watchdog = Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("lazypull-watchdog"));
    watchdog.scheduleAtFixedRate(
        () -> {
          if (healthy.getAsBoolean()) {
            send("WATCHDOG=1");
          }
        },
        0,
        interval.toMillis(),
        TimeUnit.MILLISECONDS);
  }

  static Duration watchdogInterval(String usec, String pid, long ownPid) {
    if (usec == null) {
      return null;
    }
    try {
      if (pid != null && Long.parseLong(pid.trim()) != ownPid) {
        return null;
      }
      long micros = Long.parseLong(usec.trim());
      return micros <= 0 ? null : Duration.ofNanos(micros * 1000 / 2);
    } catch (NumberFormatException e) {
      return null;
    }
  }

  @Override
  public void close() {
    if (watchdog != null) {
      watchdog.shutdownNow();
    }
  }
}

package dev.lazypull.cli;

import dev.lazypull.app.ServiceNotifier;
import dev.lazypull.config.ConfigException;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.snapshotter.DaemonRemoteLayers;
import dev.lazypull.snapshotter.SnapshotsService;
import dev.lazypull.snapshotter.Snapshotter;
import dev.lazypull.snapshotter.UnixGrpc;
import dev.lazypull.sys.DaemonThreads;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code lazypull snapshotter}: containerd's snapshots API on a unix socket, for a {@code
 * [proxy_plugins]} entry (docs/containerd.md). Layers of lazypull images are mounted lazily through
 * the daemon; others are unpacked by containerd into this snapshotter's overlay directories.
 */
@Command(
    name = "snapshotter",
    mixinStandardHelpOptions = true,
    description =
        "Serve containerd's snapshots API (a proxy snapshotter: [proxy_plugins.lazypull] type = "
            + "\"snapshot\"): lazypull images start lazily through the daemon, other images are unpacked as usual.")
final class SnapshotterCommand implements Callable<Integer> {
  static final String DEFAULT_ADDRESS = "/run/lazypull/snapshotter.sock";
  static final String DEFAULT_ROOT = "/var/lib/lazypull/snapshotter";

  @Option(
      names = "--address",
      paramLabel = "SOCKET",
      defaultValue = DEFAULT_ADDRESS,
      description =
          "Unix socket containerd's proxy plugin connects to (default: ${DEFAULT-VALUE}).")
  Path address;

  @Option(
      names = "--root",
      paramLabel = "DIR",
      defaultValue = DEFAULT_ROOT,
      description =
          "Snapshot directories and metadata, on the filesystem overlayfs upper directories may live "
              + "on (default: ${DEFAULT-VALUE}).")
  Path root;

  @Mixin SocketOption socket;

  @Mixin RegistryOptions registry;

  @Option(
      names = "--daemon-timeout",
      paramLabel = "DURATION",
      converter = Units.DurationConverter.class,
      description =
          "Longest wait for the daemon to prepare an image (it fetches the bootstrap whole) "
              + "(default: 3m).")
  Duration daemonTimeout = Duration.ofMinutes(3);

  @Option(
      names = "--remount-interval",
      paramLabel = "DURATION",
      converter = Units.DurationConverter.class,
      description =
          "How often lazy mounts that went away (a daemon restart unmounts them) are mounted again "
              + "(default: 5s).")
  Duration remountInterval = Duration.ofSeconds(5);

  @Option(
      names = "--log-level",
      paramLabel = "LEVEL",
      defaultValue = "info",
      description = "error, warn, info, debug or trace (default: ${DEFAULT-VALUE}).")
  String logLevel;

  @Override
  public Integer call() throws Exception {
    Logging.configure(logLevel);
    RegistryClient client;
    try {
      client = registry.client();
    } catch (ConfigException e) {
      System.err.println("lazypull snapshotter: " + e.getMessage());
      return 2;
    }
    DaemonRemoteLayers remote = new DaemonRemoteLayers(client, socket.socket, daemonTimeout);
    Snapshotter snapshots;
    try {
      snapshots = Snapshotter.open(root, remote);
    } catch (IOException e) {
      System.err.println("lazypull snapshotter: " + e.getMessage());
      remote.close();
      client.close();
      return 2;
    }
    int missing = snapshots.remountMissing();
    UnixGrpc.Listener listener;
    try {
      listener = UnixGrpc.serve(address, 8, new SnapshotsService(snapshots));
    } catch (IOException e) {
      System.err.println(
          "lazypull snapshotter: cannot listen on " + address + ": " + e.getMessage());
      snapshots.close();
      remote.close();
      client.close();
      return 2;
    }
    ScheduledExecutorService remounts =
        Executors.newSingleThreadScheduledExecutor(
            DaemonThreads.named("lazypull-snapshotter-remount"));
    long every = remountInterval.toMillis();
    remounts.scheduleWithFixedDelay(snapshots::remountMissing, every, every, TimeUnit.MILLISECONDS);
    ServiceNotifier notifier = ServiceNotifier.fromEnvironment();
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  notifier.stopping();
                  remounts.shutdownNow();
                  listener.close(); // lazy mounts stay: running containers keep their lower layers
                  snapshots.close();
                  remote.close();
                  client.close();
                },
                "lazypull-snapshotter-shutdown"));
    String status =
        "serving snapshots of "
            + root
            + " on "
            + address
            + " (daemon "
            + socket.socket
            + ")"
            + (missing > 0 ? "; " + missing + " lazy mount(s) wait for the daemon" : "");
    System.out.println("lazypull snapshotter: " + status);
    System.out.flush();
    notifier.ready(status);
    listener.awaitTermination();
    return 0;
  }
}

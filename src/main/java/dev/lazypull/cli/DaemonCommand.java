package dev.lazypull.cli;

import dev.lazypull.cachefiles.KernelDevnode;
import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRegistrar;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.control.ControlServer;
import dev.lazypull.daemon.CacheBinder;
import dev.lazypull.daemon.DaemonApi;
import dev.lazypull.daemon.DaemonConfig;
import dev.lazypull.daemon.DaemonStats;
import dev.lazypull.daemon.OndemandDaemon;
import dev.lazypull.daemon.SetupException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.logging.Logger;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code lazypull daemon}: bind /dev/cachefiles in on-demand mode and serve the kernel's requests. */
@Command(name = "daemon", mixinStandardHelpOptions = true,
    description = "Serve cachefiles on-demand requests for EROFS images mounted with "
        + "`mount -t erofs none DIR -o fsid=…` (see `lazypull mount`).")
final class DaemonCommand implements Callable<Integer> {
  private static final Logger LOG = Logger.getLogger(DaemonCommand.class.getName());

  @Option(names = "--cache-dir", paramLabel = "DIR", defaultValue = "/var/cache/lazypull",
      description = "cachefiles cache directory, on ext4/xfs/btrfs (default: ${DEFAULT-VALUE}).")
  Path cacheDir;

  @Option(names = "--state-dir", paramLabel = "DIR", defaultValue = "/var/lib/lazypull",
      description = "Where the image catalog is kept (default: ${DEFAULT-VALUE}).")
  Path stateDir;

  @Mixin SocketOption socket;

  @Option(names = "--threads", paramLabel = "N", defaultValue = "16",
      description = "Fetch threads (default: ${DEFAULT-VALUE}).")
  int threads;

  @Option(names = "--chunk-size", paramLabel = "SIZE", defaultValue = "1M", converter = Units.SizeConverter.class,
      description = "Fetch unit, a power of two >= 4K (default: ${DEFAULT-VALUE}).")
  long chunkSize;

  @Option(names = "--merge-limit", paramLabel = "SIZE", defaultValue = "4M", converter = Units.SizeConverter.class,
      description = "Largest single ranged read when adjacent chunks are merged (default: ${DEFAULT-VALUE}).")
  long mergeLimit;

  @Option(names = "--read-timeout", paramLabel = "DURATION", defaultValue = "30s",
      converter = Units.DurationConverter.class,
      description = "A kernel READ not served within this is failed with EIO (default: ${DEFAULT-VALUE}).")
  Duration readTimeout;

  @Option(names = "--cache-tag", paramLabel = "TAG", defaultValue = "lazypull",
      description = "fscache cache tag (default: ${DEFAULT-VALUE}).")
  String cacheTag;

  @Option(names = "--devnode", paramLabel = "PATH", defaultValue = KernelDevnode.PATH, hidden = true)
  String devnodePath;

  @Option(names = "--log-level", paramLabel = "LEVEL", defaultValue = "info",
      description = "error, warn, info, debug or trace (default: ${DEFAULT-VALUE}).")
  String logLevel;

  @Override
  public Integer call() throws Exception {
    Logging.configure(logLevel);
    DaemonConfig config = new DaemonConfig(cacheDir.toAbsolutePath(), stateDir.toAbsolutePath(), cacheTag, threads,
        Math.toIntExact(chunkSize), Math.toIntExact(mergeLimit), readTimeout, 1024,
        Math.toIntExact(Math.max(chunkSize, 1 << 20)));
    Catalog catalog = Catalog.load(config.stateDir());
    ImageSources sources = ImageSources.localOnly();
    KernelDevnode devnode;
    try {
      devnode = CacheBinder.bind(devnodePath, config.cacheDir(), config.cacheTag());
    } catch (SetupException e) {
      System.err.println("lazypull daemon: " + e.getMessage());
      return 1;
    }
    OndemandDaemon daemon = new OndemandDaemon(devnode, catalog, sources, config, new DaemonStats());
    daemon.start();
    ControlServer control = ControlServer.start(socket.socket,
        new DaemonApi(new ImageRegistrar(catalog, sources), catalog, daemon));
    Thread shutdown = new Thread(() -> {
      LOG.info("stopping");
      try {
        control.close();
      } catch (Exception e) {
        LOG.fine("closing control socket: " + e.getMessage());
      }
      daemon.close();
    }, "lazypull-shutdown");
    Runtime.getRuntime().addShutdownHook(shutdown);
    LOG.info("ready: cache " + config.cacheDir() + ", " + catalog.list().size() + " images registered, control "
        + socket.socket);
    daemon.awaitTermination();
    if (daemon.failure() != null) {
      System.err.println("lazypull daemon: " + daemon.failure().getMessage());
      return 1;
    }
    return 0;
  }
}

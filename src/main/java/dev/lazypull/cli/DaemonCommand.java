package dev.lazypull.cli;

import dev.lazypull.cachefiles.KernelDevnode;
import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRegistrar;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigFile;
import dev.lazypull.control.ControlServer;
import dev.lazypull.daemon.CacheBinder;
import dev.lazypull.daemon.DaemonApi;
import dev.lazypull.daemon.DaemonConfig;
import dev.lazypull.daemon.DaemonStats;
import dev.lazypull.daemon.OndemandDaemon;
import dev.lazypull.daemon.SetupException;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.logging.Logger;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code lazypull daemon}: bind /dev/cachefiles in on-demand mode and serve the kernel's requests. */
@Command(name = "daemon", mixinStandardHelpOptions = true,
    description = "Serve cachefiles on-demand requests for EROFS images mounted with "
        + "`mount -t erofs none DIR -o fsid=…` (see `lazypull mount`).")
final class DaemonCommand implements Callable<Integer> {
  private static final Logger LOG = Logger.getLogger(DaemonCommand.class.getName());

  @Option(names = "--config", paramLabel = "FILE",
      description = "TOML config file (default: /etc/lazypull/config.toml if it exists); flags override it.")
  Path config;

  @Option(names = "--cache-dir", paramLabel = "DIR",
      description = "cachefiles cache directory, on ext4/xfs/btrfs (default: /var/cache/lazypull).")
  Path cacheDir;

  @Option(names = "--state-dir", paramLabel = "DIR",
      description = "Where the image catalog is kept (default: /var/lib/lazypull).")
  Path stateDir;

  @Option(names = "--socket", paramLabel = "PATH",
      description = "Control socket (default: " + SocketOption.DEFAULT + ").")
  Path socket;

  @Option(names = "--threads", paramLabel = "N", description = "Fetch threads (default: 16).")
  Integer threads;

  @Option(names = "--chunk-size", paramLabel = "SIZE", converter = Units.SizeConverter.class,
      description = "Fetch unit, a power of two >= 4K (default: 1M).")
  Long chunkSize;

  @Option(names = "--merge-limit", paramLabel = "SIZE", converter = Units.SizeConverter.class,
      description = "Largest single ranged read when adjacent chunks are merged (default: 4M).")
  Long mergeLimit;

  @Option(names = "--readahead", paramLabel = "SIZE", converter = Units.SizeConverter.class,
      description = "Largest sequential read-ahead window per blob; 0 disables (default: 64M).")
  Long readAhead;

  @Option(names = "--read-timeout", paramLabel = "DURATION", converter = Units.DurationConverter.class,
      description = "A kernel READ not served within this is failed with EIO (default: 30s).")
  Duration readTimeout;

  @Option(names = "--cache-tag", paramLabel = "TAG", description = "fscache cache tag (default: lazypull).")
  String cacheTag;

  @Option(names = "--plain-http", description = "Talk plain HTTP (no TLS) to every registry; for loopback or "
      + "test registries. Per-host: plain_http in a [[registry.host]] entry.")
  boolean plainHttp;

  @Option(names = "--devnode", paramLabel = "PATH", defaultValue = KernelDevnode.PATH, hidden = true)
  String devnodePath;

  @Option(names = "--log-level", paramLabel = "LEVEL",
      description = "error, warn, info, debug or trace (default: info).")
  String logLevel;

  @Override
  public Integer call() throws Exception {
    Settings settings;
    RegistryConfig registryConfig;
    try {
      settings = Settings.resolve(this, ConfigFile.load(config != null ? config : ConfigFile.DEFAULT_PATH,
          config != null));
      registryConfig = RegistryConfig.from(settings.file().section("registry")).withPlainHttp(plainHttp)
          .withMaxConnections(settings.daemon().fetchThreads());
    } catch (ConfigException e) {
      System.err.println("lazypull daemon: " + e.getMessage());
      return 2;
    }
    Logging.configure(settings.logLevel());
    DaemonConfig daemonConfig = settings.daemon();
    Path socket = settings.socket();
    Catalog catalog = Catalog.load(daemonConfig.stateDir());
    // One client for every image: one connection pool (sized to the fetch threads), one token cache.
    RegistryClient registry = RegistryClient.create(registryConfig);
    ImageSources sources = RegistryOptions.sources(registry);
    KernelDevnode devnode;
    try {
      devnode = CacheBinder.bind(devnodePath, daemonConfig.cacheDir(), daemonConfig.cacheTag());
    } catch (SetupException e) {
      System.err.println("lazypull daemon: " + e.getMessage());
      return 1;
    }
    OndemandDaemon daemon = new OndemandDaemon(devnode, catalog, sources, daemonConfig, new DaemonStats());
    daemon.start();
    ControlServer control = ControlServer.start(socket,
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
    LOG.info("ready: cache " + daemonConfig.cacheDir() + ", " + catalog.list().size() + " images registered, control "
        + socket);
    daemon.awaitTermination();
    if (daemon.failure() != null) {
      System.err.println("lazypull daemon: " + daemon.failure().getMessage());
      return 1;
    }
    return 0;
  }
}

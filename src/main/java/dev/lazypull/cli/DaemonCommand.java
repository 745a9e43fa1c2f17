package dev.lazypull.cli;

import dev.lazypull.cachefiles.KernelDevnode;
import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRegistrar;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigFile;
import dev.lazypull.control.ControlServer;
import dev.lazypull.daemon.CacheBinder;
import dev.lazypull.daemon.CacheJanitor;
import dev.lazypull.daemon.DaemonApi;
import dev.lazypull.daemon.DaemonConfig;
import dev.lazypull.daemon.DaemonMetrics;
import dev.lazypull.daemon.DeclaredImages;
import dev.lazypull.metrics.MetricsServer;
import java.io.IOException;
import dev.lazypull.daemon.DaemonStats;
import dev.lazypull.daemon.OndemandDaemon;
import dev.lazypull.daemon.ProfileArtifacts;
import dev.lazypull.daemon.ServiceNotifier;
import dev.lazypull.daemon.SetupException;
import dev.lazypull.sys.ListenFds;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
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

  @picocli.CommandLine.Mixin FetchOptions fetch = new FetchOptions();

  @Option(names = "--readahead", paramLabel = "SIZE", converter = Units.SizeConverter.class,
      description = "Largest sequential read-ahead window per blob; 0 disables (default: 64M).")
  Long readAhead;

  @Option(names = "--read-timeout", paramLabel = "DURATION", converter = Units.DurationConverter.class,
      description = "A kernel READ not served within this is failed with EIO (default: 30s).")
  Duration readTimeout;

  @Option(names = "--cache-budget", paramLabel = "SIZE", converter = Units.SizeConverter.class,
      description = "Cull least-recently-used, unmounted cache files beyond this size (default: 0 = no limit).")
  Long cacheBudget;

  @Option(names = "--metrics", paramLabel = "HOST:PORT",
      description = "Serve Prometheus metrics on http://HOST:PORT/metrics (loopback only; default: off).")
  String metrics;

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
      settings = Settings.resolve(this, ConfigFile.load(config));
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
    ServiceNotifier notifier = ServiceNotifier.fromEnvironment();
    Integer storedFd = ListenFds.fromEnvironment().get(ServiceNotifier.DEVNODE_FDNAME);
    KernelDevnode devnode;
    try {
      if (storedFd != null) {
        // A predecessor bound the cache and its fd survived in the fd store: take over its mounts.
        devnode = CacheBinder.restore(storedFd);
        LOG.info("took over the bound devnode (fd " + storedFd + ") from the fd store; restoring requests");
      } else {
        devnode = CacheBinder.bind(devnodePath, daemonConfig.cacheDir(), daemonConfig.cacheTag());
        notifier.storeDevnode(devnode.fd());
      }
    } catch (SetupException e) {
      System.err.println("lazypull daemon: " + e.getMessage());
      return 1;
    }
    OndemandDaemon daemon = new OndemandDaemon(devnode, catalog, sources, daemonConfig, new DaemonStats());
    CacheJanitor janitor = new CacheJanitor(devnode, daemonConfig.cacheDir(), daemonConfig.stateDir(),
        settings.cacheBudget(), daemon::openCookies);
    daemon.attach(janitor);
    daemon.enablePrefetch(settings.prefetch(), daemonConfig.stateDir());
    daemon.setProfileFetcher(ProfileArtifacts.fetcher(registry)); // profiles pushed next to their images
    ImageRegistrar registrar = new ImageRegistrar(catalog, sources, daemon::imageRegistered);
    daemon.start();
    ScheduledExecutorService gc =
        Executors.newSingleThreadScheduledExecutor(dev.lazypull.sys.DaemonThreads.named("lazypull-gc"));
    long every = settings.gcInterval().toMillis();
    gc.scheduleWithFixedDelay(() -> {
      try {
        CacheJanitor.Report r = janitor.collect();
        if (r.culled() > 0) {
          LOG.info("cache gc: culled " + r.culled() + " files, " + r.bytesFreed() + " bytes; now " + r.usageAfter()
              + " of " + r.budget() + " bytes");
        }
      } catch (Exception e) {
        LOG.warning("cache gc: " + e.getMessage());
      }
    }, every, every, TimeUnit.MILLISECONDS);
    MetricsServer metricsServer = null;
    if (settings.metricsListen() != null) {
      try {
        metricsServer = MetricsServer.start(settings.metricsListen(), settings.metricsAllowRemote());
      } catch (IllegalArgumentException | IOException e) {
        System.err.println("lazypull daemon: metrics: " + e.getMessage());
        daemon.close();
        return 2;
      }
      metricsServer.add(new DaemonMetrics(daemon, catalog, janitor, settings.hungThreshold())
          .withRegistry(registry.stats()));
    }
    MetricsServer metricsToClose = metricsServer;
    ControlServer control = ControlServer.start(socket,
        new DaemonApi(registrar, catalog, daemon, janitor));
    Thread shutdown = new Thread(() -> {
      LOG.info("stopping");
      notifier.stopping();
      notifier.close();
      gc.shutdownNow();
      janitor.saveUsage();
      if (metricsToClose != null) {
        metricsToClose.close();
      }
      try {
        control.close();
      } catch (Exception e) {
        LOG.fine("closing control socket: " + e.getMessage());
      }
      daemon.close();
    }, "lazypull-shutdown");
    Runtime.getRuntime().addShutdownHook(shutdown);
    DeclaredImages.Result declared = DeclaredImages.registerAll(settings.imagesDir(), registrar, catalog,
        daemon::setPrefetchPolicy);
    String status = catalog.list().size() + " images registered (" + declared.registered() + " from images.d"
        + (declared.errors().isEmpty() ? "" : ", " + declared.errors().size() + " failed") + "), cache "
        + daemonConfig.cacheDir();
    LOG.info("ready: " + status + ", control " + socket);
    notifier.ready(status);
    notifier.startWatchdog(daemon::isRunning);
    daemon.awaitTermination();
    if (daemon.failure() != null) {
      System.err.println("lazypull daemon: " + daemon.failure().getMessage());
      return 1;
    }
    return 0;
  }
}

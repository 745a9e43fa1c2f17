package dev.lazypull.app;

import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRegistrar;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.control.ControlServer;
import dev.lazypull.fanotify.EventFdLimit;
import dev.lazypull.fanotify.FanotifyFrontend;
import dev.lazypull.fanotify.FanotifyGroup;
import dev.lazypull.fanotify.FanotifySupport;
import dev.lazypull.fanotify.KernelFanotifyGroup;
import dev.lazypull.fetch.BlobCacheDir;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.fetch.FetchStats;
import dev.lazypull.frontend.CacheKeeper;
import dev.lazypull.frontend.Frontend;
import dev.lazypull.frontend.ServedBlob;
import dev.lazypull.frontend.SetupException;
import dev.lazypull.fscache.CacheBinder;
import dev.lazypull.fscache.CacheJanitor;
import dev.lazypull.fscache.Devnode;
import dev.lazypull.fscache.FscacheFrontend;
import dev.lazypull.fscache.KernelDevnode;
import dev.lazypull.metrics.MetricsServer;
import dev.lazypull.prefetch.PrefetchManager;
import dev.lazypull.prefetch.PrefetchPolicy;
import dev.lazypull.prefetch.Prefetcher;
import dev.lazypull.prefetch.ProfileArtifacts;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import dev.lazypull.sys.DaemonThreads;
import dev.lazypull.sys.ListenFds;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Logger;

/**
 * The daemon, assembled: the catalog, the registry client, the fetch core, a kernel front end over
 * it, the cache keeper, prefetch, the control socket, metrics and systemd notification — started in
 * dependency order by {@link Builder#start} and stopped in reverse by {@link #close}. Commands and
 * tests build it the same way.
 */
public final class Daemon implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Daemon.class.getName());

  private final DaemonConfig config;
  private final Catalog catalog;

  /**
   * The registry client, when images come from registries (null when the caller gave only sources).
   */
  private final RegistryClient registry;

  private final boolean ownsRegistry;
  private final FetchCore core;
  private final Frontend frontend;

  /** The fanotify front end (null in fscache mode), and the host cache it serves mounts from. */
  private final FanotifyFrontend fanotify;

  private final BlobCacheDir hostCache;
  private final boolean adopted;

  /** Held for the daemon's life in fanotify mode (one daemon per run directory), else null. */
  private final DaemonLock lock;

  /** The kernel fanotify group's descriptor (what the keeper holds a duplicate of), or -1. */
  private final int groupFd;

  private final CacheKeeper keeper;
  private final PrefetchManager prefetch;
  private final ImageRegistrar registrar;
  private final ServiceNotifier notifier;
  private final ScheduledExecutorService gc;
  private MetricsServer metrics;
  private ControlServer control;
  private final AtomicBoolean closed = new AtomicBoolean();

  public static Builder builder(DaemonConfig config) {
    return new Builder(config);
  }

  /** What the daemon is built from besides its config; each has a real default. */
  public static final class Builder {
    private final DaemonConfig config;
    private RegistryConfig registryConfig = RegistryConfig.defaults();
    private RegistryClient registryClient;
    private ImageSources sources;
    private Devnode devnode;
    private FanotifyGroup group;
    private String devnodePath = KernelDevnode.PATH;
    private ServiceNotifier notifier;

    private Builder(DaemonConfig config) {
      this.config = config;
    }

    /** How registries are reached (default: no configuration). */
    public Builder registry(RegistryConfig c) {
      registryConfig = c;
      return this;
    }

    /**
     * A registry client the caller owns (and closes) instead of one built from the registry config.
     */
    public Builder registryClient(RegistryClient c) {
      registryClient = c;
      return this;
    }

    /**
     * Where images come from instead of the registry client (tests: local layouts, in-memory
     * blobs).
     */
    public Builder sources(ImageSources s) {
      sources = s;
      return this;
    }

    /**
     * A devnode already bound (tests: a fake kernel) instead of binding {@code /dev/cachefiles}.
     */
    public Builder devnode(Devnode d) {
      devnode = d;
      return this;
    }

    /**
     * A fanotify group to serve with (tests: a fake) instead of the kernel's: the fanotify front
     * end.
     */
    public Builder group(FanotifyGroup g) {
      group = g;
      return this;
    }

    /** The cachefiles devnode to bind (default {@code /dev/cachefiles}). */
    public Builder devnodePath(String path) {
      devnodePath = path;
      return this;
    }

    public Builder notifier(ServiceNotifier n) {
      notifier = n;
      return this;
    }

    /**
     * Assembles and starts the daemon.
     *
     * @throws SetupException if the kernel side cannot be set up (names what is wrong)
     * @throws IOException if the state, the control socket or the metrics endpoint cannot be set up
     */
    public Daemon start() throws SetupException, IOException {
      ServiceNotifier n = notifier != null ? notifier : ServiceNotifier.fromEnvironment();
      Catalog catalog = Catalog.load(config.stateDir());
      // One client for every image: one connection pool (sized to the fetch threads), one token
      // cache.
      RegistryClient owned =
          sources == null && registryClient == null
              ? RegistryClient.create(
                  registryConfig.withMaxConnections(config.fetch().threadsPerOrigin()))
              : null;
      RegistryClient registry = registryClient != null ? registryClient : owned;
      ImageSources s = sources != null ? sources : Sources.over(registry, config.cacheDir());
      Daemon daemon = null;
      KernelSide kernel = null;
      try {
        kernel = kernelSide(n);
        daemon = new Daemon(config, catalog, registry, owned != null, s, kernel, n);
        daemon.startServing();
      } catch (SetupException | IOException | RuntimeException e) {
        if (daemon != null) {
          daemon.close();
        } else {
          if (kernel != null) {
            kernel.close();
          }
          if (owned != null) {
            owned.close();
          }
        }
        throw e;
      }
      return daemon;
    }

    /** The kernel side of the front end: given (tests), or set up per {@code config.frontend()}. */
    private KernelSide kernelSide(ServiceNotifier n) throws SetupException {
      if (devnode != null) {
        return new KernelSide(devnode, null, false, null);
      }
      if (group != null) {
        return new KernelSide(null, group, false, null);
      }
      String want = config.frontend();
      if (want.equals("fscache")) {
        return new KernelSide(bindDevnode(n), null, false, null);
      }
      if (want.equals("fanotify")) {
        return fanotifyGroup(n);
      }
      // auto, after a crash: the front end the predecessor ran, whose mounts are waiting for us (a
      // kernel with both must not switch to fscache under live fanotify mounts); with both kept, as
      // before, fscache first
      Map<String, Integer> stored = ListenFds.fromEnvironment();
      if (stored.get(ServiceNotifier.DEVNODE_FDNAME) == null
          && (stored.get(FANOTIFY_FDNAME) != null
              || FdKeeper.holds(config.runDir(), FANOTIFY_FDNAME))) {
        return fanotifyGroup(n);
      }
      try { // auto: the kernel's own cache files where it has them, else pre-content events
        return new KernelSide(bindDevnode(n), null, false, null);
      } catch (SetupException fscache) {
        try {
          return fanotifyGroup(n);
        } catch (SetupException fanotify) {
          throw new SetupException(
              "no front end works on this kernel ("
                  + System.getProperty("os.version")
                  + "). fscache: "
                  + fscache.getMessage()
                  + " — fanotify: "
                  + fanotify.getMessage());
        }
      }
    }

    /**
     * The fanotify group: the one a predecessor left (in systemd's fd store, or with the keeper),
     * else a new one — kept alive outside this process from now on, so a crash never lets accesses
     * through over holes.
     */
    private KernelSide fanotifyGroup(ServiceNotifier n) throws SetupException {
      DaemonLock lock;
      try { // before the group is touched: a second daemon must not take over the first one's
        lock = DaemonLock.acquire(config.runDir());
      } catch (IOException e) {
        throw new SetupException(e.getMessage(), e);
      }
      try {
        return fanotifyGroup(n, lock);
      } catch (SetupException | RuntimeException e) {
        lock.close();
        throw e;
      }
    }

    private KernelSide fanotifyGroup(ServiceNotifier n, DaemonLock lock) throws SetupException {
      EventFdLimit
          .cap(); // event fd numbers stay below EventFdLimit.MAX: what a successor sweeps after a
      // crash
      Integer stored = ListenFds.fromEnvironment().get(FANOTIFY_FDNAME);
      // a keeper holds the group when the daemon was started by hand, or when a clean stop under a
      // service manager left busy mounts (the fd store does not outlive a stopped service)
      Optional<Integer> kept =
          stored == null ? FdKeeper.takeBack(config.runDir(), FANOTIFY_FDNAME) : Optional.empty();
      try {
        if (stored != null || kept.isPresent()) {
          int fd = stored != null ? stored : kept.get();
          if (n.active()
              && kept.isPresent()) { // the service manager keeps it from now on: the keeper ends
            // once the daemon serves (startServing), so a start that fails before leaves it held
            n.storeFd(FANOTIFY_FDNAME, fd);
          }
          LOG.info(
              "took over the fanotify group (fd "
                  + fd
                  + ") from "
                  + (stored != null ? "the fd store" : "the keeper"));
          return new KernelSide(null, KernelFanotifyGroup.adopt(fd), true, lock);
        }
        Path cacheDir = config.cacheDir().toAbsolutePath().normalize();
        if (!Files.isDirectory(
            cacheDir)) { // the probe runs in it (its filesystem must take pre-content marks)
          Files.createDirectories(cacheDir);
          Files.setPosixFilePermissions(cacheDir, PosixFilePermissions.fromString("rwx------"));
        }
        FanotifySupport.Report support = FanotifySupport.probe(cacheDir);
        if (!support.usable()) {
          throw new SetupException(support.summary());
        }
        KernelFanotifyGroup g = KernelFanotifyGroup.open();
        if (n.active()) {
          n.storeFd(FANOTIFY_FDNAME, g.fd());
        } else {
          FdKeeper.keep(config.runDir(), FANOTIFY_FDNAME, g.fd());
        }
        return new KernelSide(null, g, false, lock);
      } catch (IOException e) {
        throw new SetupException("fanotify: " + e.getMessage(), e);
      }
    }

    /**
     * The fd store's devnode (a predecessor bound the cache and its mounts live on), else a new
     * binding.
     */
    private KernelDevnode bindDevnode(ServiceNotifier n) throws SetupException {
      Integer storedFd = ListenFds.fromEnvironment().get(ServiceNotifier.DEVNODE_FDNAME);
      if (storedFd != null) {
        KernelDevnode devnode = CacheBinder.restore(storedFd);
        LOG.info(
            "took over the bound devnode (fd "
                + storedFd
                + ") from the fd store; restoring requests");
        return devnode;
      }
      KernelDevnode devnode = CacheBinder.bind(devnodePath, config.fscacheDir(), config.cacheTag());
      n.storeDevnode(devnode.fd());
      return devnode;
    }
  }

  /** fsid of the fd-store entry (and keeper record) of the fanotify group. */
  public static final String FANOTIFY_FDNAME = "fanotify";

  /**
   * How long a prepared image may stay unmounted before it is released (a mount follows within
   * moments).
   */
  static final Duration UNMOUNT_GRACE = Duration.ofSeconds(60);

  /**
   * What a front end serves the kernel through: a bound devnode, or a fanotify group (maybe handed
   * over).
   */
  private record KernelSide(
      Devnode devnode, FanotifyGroup group, boolean adopted, DaemonLock lock) {
    void close() {
      if (group != null) {
        group.close();
      }
      if (devnode != null) {
        try {
          devnode.close();
        } catch (IOException e) {
          LOG.fine(() -> "closing the devnode: " + e.getMessage());
        }
      }
      if (lock != null) {
        lock.close();
      }
    }
  }

  private Daemon(
      DaemonConfig config,
      Catalog catalog,
      RegistryClient registry,
      boolean ownsRegistry,
      ImageSources sources,
      KernelSide kernel,
      ServiceNotifier notifier)
      throws IOException {
    this.config = config;
    this.catalog = catalog;
    this.registry = registry;
    this.ownsRegistry = ownsRegistry;
    this.notifier = notifier;
    this.core =
        new FetchCore(config.fetch(), new FetchStats(), BlobCacheDir.tablesDir(config.cacheDir()));
    this.adopted = kernel.adopted();
    this.lock = kernel.lock();
    this.groupFd = kernel.group() instanceof KernelFanotifyGroup k ? k.fd() : -1;
    if (kernel.devnode() != null) {
      FscacheFrontend fscache =
          new FscacheFrontend(
              kernel.devnode(), catalog, sources, core, config.maxOutstandingReads());
      CacheJanitor janitor =
          new CacheJanitor(
              kernel.devnode(),
              config.fscacheDir(),
              config.stateDir(),
              config.cacheBudget(),
              fscache::openCookies);
      fscache.attach(janitor);
      this.frontend = fscache;
      this.fanotify = null;
      this.hostCache = null;
      this.keeper = janitor;
    } else {
      this.hostCache = BlobCacheDir.open(config.cacheDir(), core);
      this.fanotify =
          new FanotifyFrontend(
              kernel.group(),
              catalog,
              sources,
              core,
              hostCache,
              config.stateDir(),
              FanotifySupport.denyErrnoWorks(kernel.group()));
      this.frontend = fanotify;
      this.keeper = new HostCacheKeeper(config.cacheDir(), config.cacheBudget());
    }
    if (config.prefetch() != null) {
      Prefetcher prefetcher =
          new Prefetcher(
              config.prefetch().threads(),
              config.prefetch().bytesPerSecond(),
              config.fetch().mergeLimit(),
              () -> frontend.inflightRequests(config.hungThreshold())[0],
              config.stateDir().resolve("tmp"));
      prefetcher.afterEachJob(
          () -> {
            if (fanotify
                != null) { // files the job completed lose their marks now, not at the next sweep
              fanotify.unmarkComplete();
            }
          });
      this.prefetch =
          new PrefetchManager(
              prefetcher,
              config.prefetch(),
              config.stateDir(),
              config.fetch().chunkSize(),
              this::servedOf);
      frontend.addListener(prefetch);
      if (registry != null) {
        prefetch.setProfileFetcher(
            ProfileArtifacts.fetcher(registry)); // profiles pushed next to their images
      }
    } else {
      this.prefetch = null;
    }
    this.registrar =
        new ImageRegistrar(
            catalog, sources, prefetch != null ? prefetch::imageRegistered : r -> {});
    this.gc = Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("lazypull-gc"));
  }

  private void startServing() throws IOException {
    if (fanotify != null) {
      fanotify.start(adopted);
    } else {
      frontend.start();
    }
    long every = config.gcInterval().toMillis();
    gc.scheduleWithFixedDelay(this::collectCache, every, every, TimeUnit.MILLISECONDS);
    if (fanotify != null) { // images unmounted by anyone (umount, systemd) stop being served
      gc.scheduleWithFixedDelay(this::releaseUnmounted, 10, 10, TimeUnit.SECONDS);
      if (groupFd >= 0
          && !notifier.active()) { // a keeper that died is replaced: a crash must never fail open
        gc.scheduleWithFixedDelay(this::checkKeeper, 5, 5, TimeUnit.SECONDS);
      }
    }
    if (config.metricsListen() != null) {
      metrics = MetricsServer.start(config.metricsListen(), config.metricsAllowRemote());
      DaemonMetrics m = new DaemonMetrics(this, config.hungThreshold());
      metrics.add(registry != null ? m.withRegistry(registry.stats()) : m);
    }
    if (config.socket() != null) {
      control = ControlServer.start(config.socket(), new DaemonApi(this));
    }
    DeclaredImages.Result declared =
        DeclaredImages.registerAll(
            config.imagesDir(),
            registrar,
            catalog,
            prefetch == null
                ? null
                : (fsid, policy) -> prefetch.setPolicy(fsid, PrefetchPolicy.parse(policy)));
    String status =
        catalog.list().size()
            + " images registered ("
            + declared.registered()
            + " from images.d"
            + (declared.errors().isEmpty() ? "" : ", " + declared.errors().size() + " failed")
            + "), "
            + frontend.name()
            + " front end, cache "
            + config.cacheDir();
    LOG.info("ready: " + status + (control != null ? ", control " + config.socket() : ""));
    notifier.ready(status);
    notifier.startWatchdog(frontend::isRunning);
    if (adopted && notifier.active()) {
      // the group taken over is the service manager's now (fd store, stored at start-up): a keeper
      // that held it may end — only now that the daemon serves, as storeFd never reports failure
      FdKeeper.stop(config.runDir(), FANOTIFY_FDNAME);
    }
  }

  /**
   * A warning at shutdown, straight to stderr (where the log goes, and journald reads): JUL's own
   * shutdown hook resets the log handlers concurrently with ours, so a record logged while stopping
   * may never be written.
   */
  private static void shutdownNotice(String message) {
    System.err.println(
        LocalTime.now().format(DateTimeFormatter.ofPattern("HH:mm:ss.SSS"))
            + " WARNING Daemon: "
            + message);
    System.err.flush();
  }

  /** Where the group of busy mounts stays after this stop, said in the stop's warning. */
  private String keepGroupForBusyMounts() {
    if (!notifier.active()) {
      return "with its keeper";
    }
    if (groupFd < 0) {
      return "in the service manager's fd store";
    }
    try {
      return FdKeeper.keepBeyondTheService(config.runDir(), FANOTIFY_FDNAME, groupFd)
          ? "with a keeper in a systemd scope of its own (the fd store ends with the service)"
          : "with a keeper (no systemd scope: a service manager that ends the service's processes"
              + " ends it too)";
    } catch (IOException | RuntimeException e) {
      return "only in the service manager's fd store, which ends with the service (no keeper: "
          + e.getMessage()
          + "): their reads could then see holes — unmount them before stopping";
    }
  }

  private void collectCache() {
    try {
      CacheKeeper.Report r = keeper.collect(keeper.budget());
      if (r.culled() > 0) {
        LOG.info(
            "cache gc: culled "
                + r.culled()
                + " files, "
                + r.bytesFreed()
                + " bytes; now "
                + r.usageAfter()
                + " of "
                + r.budget()
                + " bytes");
      }
    } catch (IOException | RuntimeException e) {
      LOG.warning("cache gc: " + e.getMessage());
    }
  }

  private void checkKeeper() {
    try {
      if (FdKeeper.ensure(config.runDir(), FANOTIFY_FDNAME, groupFd)) {
        LOG.warning(
            "the fanotify group's keeper was gone (a crash of this daemon would have let every pending read"
                + " through over holes); a new keeper holds it now");
      }
    } catch (IOException | RuntimeException e) {
      LOG.severe(
          "the fanotify group's keeper is gone and cannot be started again: "
              + e.getMessage()
              + "; until it"
              + " is, a crash of this daemon lets reads of data not cached yet through as zeros");
    }
  }

  private void releaseUnmounted() {
    try {
      fanotify.releaseUnmounted(UNMOUNT_GRACE);
    } catch (IOException | RuntimeException e) {
      LOG.warning("checking which images are still mounted: " + e.getMessage());
    }
  }

  public DaemonConfig config() {
    return config;
  }

  public Catalog catalog() {
    return catalog;
  }

  public ImageRegistrar registrar() {
    return registrar;
  }

  public Frontend frontend() {
    return frontend;
  }

  /** The fanotify front end, or null when the daemon serves through fscache. */
  public FanotifyFrontend fanotify() {
    return fanotify;
  }

  public CacheKeeper cacheKeeper() {
    return keeper;
  }

  public FetchStats fetchStats() {
    return core.stats();
  }

  /** The Prometheus endpoint, or null when metrics are off. */
  public MetricsServer metrics() {
    return metrics;
  }

  /** Background prefetch, or null when it is off. */
  public PrefetchManager prefetch() {
    return prefetch;
  }

  /** The blobs of one image the front end serves now (those of it that are mounted). */
  public List<ServedBlob> servedOf(String fsid) {
    return frontend.served().stream().filter(b -> b.binding().image().fsid().equals(fsid)).toList();
  }

  /**
   * Waits until the front end stops serving (a fatal kernel error, or {@link #close}).
   *
   * @return the error that stopped it, or null
   */
  public Throwable awaitTermination() throws InterruptedException {
    frontend.awaitTermination();
    return frontend.failure();
  }

  /** Stops everything, in reverse order of start; idempotent. */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    LOG.info("stopping");
    notifier.stopping();
    notifier.close();
    gc.shutdownNow();
    keeper.saveUsage();
    if (metrics != null) {
      metrics.close();
    }
    if (control != null) {
      try {
        control.close();
      } catch (IOException e) {
        LOG.fine("closing control socket: " + e.getMessage());
      }
    }
    if (prefetch != null) {
      prefetch.close();
    }
    // a clean stop leaves no mount without its daemon: it would read holes once the group is gone
    List<String> busy = fanotify != null ? fanotify.unmountAll() : List.of();
    // their readers must wait for the next daemon, never read holes: the group stays kept, and
    // under a service manager by a keeper of its own — the fd store ends with the service (taken
    // while the daemon's own descriptor is still open)
    String keptBy = busy.isEmpty() ? null : keepGroupForBusyMounts();
    frontend.close();
    if (fanotify != null) {
      if (!busy.isEmpty()) {
        shutdownNotice(
            "mounts still in use stay mounted: "
                + String.join(", ", busy)
                + "; the fanotify group stays "
                + keptBy
                + ", so their reads of data not cached yet wait for the next "
                + "`lazypull daemon` (or fail with EIO once it runs); unmount them, then stop again to end it");
      } else if (notifier.active()) {
        notifier.removeFd(FANOTIFY_FDNAME);
      } else {
        FdKeeper.stop(config.runDir(), FANOTIFY_FDNAME);
      }
    }
    core.close();
    if (hostCache != null) {
      hostCache.close();
    }
    if (ownsRegistry) {
      registry.close();
    }
    if (lock != null) {
      lock.close();
    }
  }
}

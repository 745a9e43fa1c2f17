package dev.lazypull.cli;

import dev.lazypull.blob.ImageSource;
import dev.lazypull.cache.BlobCacheDir;
import dev.lazypull.cache.BlobCacheGc;
import dev.lazypull.cache.FetchContext;
import dev.lazypull.cache.FetchStats;
import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigFile;
import dev.lazypull.config.ConfigNode;
import dev.lazypull.image.LazyImage;
import dev.lazypull.nbd.ExportInfo;
import dev.lazypull.nbd.ImageDevices;
import dev.lazypull.nbd.KernelNbdDevice;
import dev.lazypull.nbd.ListenAddress;
import dev.lazypull.nbd.NbdServer;
import dev.lazypull.nbd.NbdStats;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import dev.lazypull.sys.AlignedBuffers;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Logger;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull nbd IMAGE}: serve the image's flattened EROFS device (or one raw blob) as a read-only NBD
 * export, fetching lazily into a local cache, on a unix socket or loopback TCP, and/or attached directly to a
 * kernel {@code /dev/nbdN}. Runs until SIGTERM/SIGINT (or until the kernel device is disconnected).
 */
@Command(name = "nbd", mixinStandardHelpOptions = true,
    description = {"Serve IMAGE as a read-only NBD block device, fetched lazily: the flattened EROFS device "
        + "(bootstrap at block 0, each data blob at its mapped block; mount with `mount -t erofs /dev/nbdX DIR`, "
        + "Linux >= 6.4), or one raw blob with --blob.",
        "Config file table [nbd]: cache_dir, listen, allow_remote, threads, chunk_size, merge_limit, read_timeout, "
            + "max_connections, connections, log_level, cache_budget; registry access: the [registry] table.",
        "Data blobs of images with chunk digest tables are verified chunk by chunk before they are cached."})
final class NbdCommand implements java.util.concurrent.Callable<Integer> {
  private static final Logger LOG = Logger.getLogger(NbdCommand.class.getName());
  /** How often a running export brings the shared cache dir back within its budget. */
  private static final Duration GC_PERIOD = Duration.ofMinutes(1);

  @Parameters(index = "0", paramLabel = "IMAGE", description = "oci:DIR[:TAG] or HOST/REPO[:TAG|@DIGEST].")
  String image;

  @Option(names = "--blob", paramLabel = "DIGEST",
      description = "Export this one layer raw (sha256:HEX, or a unique prefix of its hex) instead of the "
          + "flattened device.")
  String blob;

  @Option(names = "--listen", paramLabel = "unix:PATH|tcp:HOST:PORT",
      description = "Where to serve NBD (default: unix:/run/lazypull/nbd-<image>.sock, or none with --device).")
  String listen;

  @Option(names = "--allow-remote", description = "Allow --listen on a non-loopback TCP address. NBD has no "
      + "authentication or encryption here: only on a trusted network.")
  boolean allowRemote;

  @Option(names = "--device", paramLabel = "/dev/nbdN",
      description = "Attach the export to this kernel nbd device (needs root and the nbd module).")
  String device;

  @Option(names = "--connections", paramLabel = "N", description = "Sockets given to --device (default: "
      + "min(4, CPUs)).")
  Integer connections;

  @Option(names = "--name", paramLabel = "NAME", description = "Export name (default: the IMAGE text; the empty "
      + "name always selects the export too).")
  String name;

  @Option(names = "--config", paramLabel = "FILE",
      description = "TOML config file (default: /etc/lazypull/config.toml if it exists); flags override it.")
  Path config;

  @Option(names = "--cache-dir", paramLabel = "DIR",
      description = "Local blob cache, kept across restarts (default: " + "/var/cache/lazypull-nbd).")
  Path cacheDir;

  @Option(names = "--cache-budget", paramLabel = "SIZE", converter = Units.SizeConverter.class,
      description = "Keep the cache dir within SIZE: at start and every minute, unused blob files are removed, "
          + "least recently used first (default: 0, no budget).")
  Long cacheBudget;

  @picocli.CommandLine.Mixin FetchOptions fetch = new FetchOptions();

  @Option(names = "--read-timeout", paramLabel = "DURATION", converter = Units.DurationConverter.class,
      description = "A READ whose data is not fetched within this is answered EIO (default: 30s).")
  Duration readTimeout;

  @Option(names = "--max-connections", paramLabel = "N", description = "Client connections at once (default: 64).")
  Integer maxConnections;

  @Option(names = "--log-level", paramLabel = "LEVEL", description = "error, warn, info, debug or trace.")
  String logLevel;

  @Option(names = "--plain-http", description = "Talk plain HTTP (no TLS) to every registry; for loopback or "
      + "test registries. Per-host: plain_http in a [[registry.host]] entry of the config file.")
  boolean plainHttp;

  @Override
  public Integer call() throws Exception {
    NbdSettings s;
    RegistryConfig registryConfig;
    try {
      ConfigNode file = ConfigFile.load(config);
      s = NbdSettings.resolve(this, file);
      registryConfig = RegistryConfig.from(file.section("registry")).withPlainHttp(plainHttp)
          .withMaxConnections(s.fetchThreads());
    } catch (ConfigException e) {
      System.err.println("lazypull nbd: " + e.getMessage());
      return 2;
    }
    Logging.configure(s.logLevel());
    ListenAddress address;
    try {
      address = s.listen() != null ? ListenAddress.parse(s.listen()) : null;
    } catch (IllegalArgumentException e) {
      System.err.println("lazypull nbd: " + e.getMessage());
      return 2;
    }
    if (device != null) {
      KernelNbdDevice.checkAvailable(device); // before fetching anything
    }
    // One registry client (connection pool sized to the fetch threads, one token cache) for every blob.
    RegistryClient registry = RegistryClient.create(registryConfig);
    ImageSource source;
    LazyImage img;
    try {
      source = RegistryOptions.sources(registry).open(image);
      img = source.resolve();
    } catch (IOException | RuntimeException e) {
      registry.close();
      throw e;
    }
    if (address == null && device == null) {
      address = new ListenAddress.Unix(Path.of("/run/lazypull/nbd-" + img.manifestDigest().hex().substring(0, 12)
          + ".sock"));
    }

    ExecutorService fetchPool = fetchPool(s.fetchThreads());
    int bufferSize = Math.max(s.chunkSize(), 1 << 20);
    ThreadLocal<ByteBuffer> buffers = ThreadLocal.withInitial(() -> AlignedBuffers.allocate(bufferSize));
    FetchStats fetchStats = new FetchStats();
    FetchContext ctx = new FetchContext(fetchPool, s.chunkSize(), s.mergeLimit(), fetchStats, buffers::get);
    BlobCacheDir cache = BlobCacheDir.open(s.cacheDir(), ctx);
    ImageDevices.Built built = blob != null
        ? ImageDevices.raw(img, blob, source.blobs(), cache)
        : ImageDevices.flattened(img, source.blobs(), cache, s.readTimeout());
    if (s.cacheBudget() > 0) { // now that this export's files are open (locked: in use), the others' go first
      try {
        BlobCacheGc.collect(s.cacheDir(), s.cacheBudget());
      } catch (IOException e) { // the export serves regardless; the next round tries again
        LOG.warning("cache " + s.cacheDir() + ": collecting to its budget failed: " + e.getMessage());
      }
    }
    AutoCloseable gc = s.cacheBudget() > 0
        ? BlobCacheGc.keepWithin(s.cacheDir(), s.cacheBudget(), GC_PERIOD) : () -> { };
    ExportInfo info = new ExportInfo(name != null ? name : image, built.description(), built.device().size());
    NbdServer server = new NbdServer(built.device(), info, NbdServer.Options.defaults()
        .withMaxConnections(s.maxConnections()).withReadDeadline(s.readTimeout()));
    CompletableFuture<Void> stopped = new CompletableFuture<>();
    AtomicBoolean stopping = new AtomicBoolean();
    KernelNbdDevice[] attached = {null};
    Runnable stop = () -> {
      if (!stopping.compareAndSet(false, true)) {
        stopped.join(); // another thread is stopping: wait for it
        return;
      }
      if (attached[0] != null) {
        attached[0].close(); // the kernel sends DISC on its sockets
      }
      server.close(Duration.ofSeconds(5));
      fetchPool.shutdownNow();
      try {
        gc.close();
      } catch (Exception e) {
        LOG.fine(() -> "stopping the cache collector: " + e);
      }
      cache.close();
      registry.close();
      System.err.println(statsLine(fetchStats, server.stats()));
      stopped.complete(null);
    };
    Runtime.getRuntime().addShutdownHook(new Thread(stop, "lazypull-nbd-shutdown"));
    try {
      if (address != null) {
        Object bound = server.listen(address, s.allowRemote());
        System.out.println("serving " + info.description() + ", " + info.size() + " bytes, on "
            + uri(address, bound));
      }
      if (device != null) {
        attached[0] = KernelNbdDevice.attach(device, server, s.connections(),
            s.readTimeout().plusSeconds(30));
        System.out.println("attached " + device + " (" + info.size() + " bytes, read-only): "
            + (built.layout() != null ? "mount -t erofs -o ro " + device + " DIR" : "raw blob"));
        attached[0].disconnected().whenComplete((v, e) -> {
          if (!stopping.get()) { // disconnected from outside (nbd-client -d) or failed: nothing left to serve
            LOG.info(device + " was disconnected" + (e != null ? ": " + e.getMessage() : ""));
            new Thread(() -> System.exit(e == null ? 0 : 1), "lazypull-nbd-exit").start();
          }
        });
      }
    } catch (IllegalArgumentException e) {
      System.err.println("lazypull nbd: " + e.getMessage());
      stop.run();
      return 2;
    }
    System.out.flush();
    stopped.join();
    return 0;
  }

  /** The fetch pool: daemon threads lazypull-fetch-N (also used by the standalone prefetch). */
  static ExecutorService fetchPool(int threads) {
    return Executors.newFixedThreadPool(threads, dev.lazypull.sys.DaemonThreads.numbered("lazypull-fetch-"));
  }

  /** One {@code key=value} line of counters, printed at exit (scripts and tests read it). */
  static String statsLine(FetchStats fetch, NbdStats server) {
    StringBuilder line = new StringBuilder("lazypull nbd: stats fetches=").append(fetch.fetches.sum())
        .append(" bytesFetched=").append(fetch.bytesFetched.sum())
        .append(" fetchFailures=").append(fetch.fetchFailures.sum())
        .append(" chunksVerified=").append(fetch.chunksVerified.sum())
        .append(" integrityFailures=").append(fetch.integrityMismatchesOrigin.sum()
            + fetch.integrityMismatchesMirror.sum());
    server.snapshot().forEach((k, v) -> line.append(' ').append(k).append('=').append(v));
    return line.toString();
  }

  private static String uri(ListenAddress address, Object bound) {
    if (address instanceof ListenAddress.Unix u) {
      return "nbd+unix:///?socket=" + u.path();
    }
    String b = bound.toString();
    return "nbd://" + b.substring(b.lastIndexOf('/') + 1) + "/";
  }
}

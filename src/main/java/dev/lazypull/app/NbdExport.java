package dev.lazypull.app;

import dev.lazypull.blob.ImageSource;
import dev.lazypull.control.ControlServer;
import dev.lazypull.fetch.BlobCacheDir;
import dev.lazypull.fetch.BlobCacheGc;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.fetch.FetchStats;
import dev.lazypull.image.LazyImage;
import dev.lazypull.nbd.device.ImageDevices;
import dev.lazypull.nbd.device.KernelNbdDevice;
import dev.lazypull.nbd.device.OverlayDevice;
import dev.lazypull.nbd.protocol.ExportInfo;
import dev.lazypull.nbd.server.ExportDevice;
import dev.lazypull.nbd.server.ListenAddress;
import dev.lazypull.nbd.server.NbdServer;
import dev.lazypull.nbd.server.NbdStats;
import dev.lazypull.overlay.Overlay;
import dev.lazypull.overlay.OverlayMeta;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;

/**
 * An image served as an NBD export, assembled: the registry client, the image resolved, the fetch
 * core over the host cache, the device (flattened EROFS or one raw blob; with an overlay over it
 * when writable), the server on its socket and/or a kernel {@code /dev/nbdN}, and the cache
 * collector — started by {@link #start} and stopped in reverse by {@link #close}. It runs until
 * closed or until the kernel device is disconnected from outside ({@link #stopped}).
 */
public final class NbdExport implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(NbdExport.class.getName());

  /** How often a running export brings the shared cache back within its budget. */
  private static final Duration GC_PERIOD = Duration.ofMinutes(1);

  private final RegistryClient registry;
  private final FetchCore core;
  private final BlobCacheDir cache;
  private final ImageDevices.Built built;
  private final ExportInfo info;
  private final NbdServer server;

  /** A writable export's overlay, null for a read-only export. */
  private final Overlay overlay;

  private AutoCloseable gc = () -> {};
  // What forks and live snapshots need: set once by start().
  private ExportConfig config;
  private ImageSource source;
  private Images.Resolved resolved;
  private String baseDevice;
  private ControlServer control;
  private final Map<String, Fork> forks = new ConcurrentHashMap<>();
  private final AtomicInteger forkSeq = new AtomicInteger();
  private ListenAddress address;
  private Object bound;
  private volatile KernelNbdDevice attached;
  private final AtomicBoolean closing = new AtomicBoolean();
  private final CompletableFuture<Integer> stopped = new CompletableFuture<>();

  private NbdExport(
      RegistryClient registry,
      FetchCore core,
      BlobCacheDir cache,
      ImageDevices.Built built,
      ExportInfo info,
      NbdServer server,
      Overlay overlay) {
    this.registry = registry;
    this.core = core;
    this.cache = cache;
    this.built = built;
    this.info = info;
    this.server = server;
    this.overlay = overlay;
  }

  /**
   * Resolves the image, builds its device over the host cache and starts serving it.
   *
   * @throws IOException if the image cannot be resolved, its device built, or the export cannot
   *     listen or attach
   * @throws IllegalArgumentException for a bad listen address (or a remote one without {@code
   *     allowRemote})
   */
  public static NbdExport start(ExportConfig c, RegistryConfig registryConfig) throws IOException {
    ListenAddress address = c.listen() != null ? ListenAddress.parse(c.listen()) : null;
    if (c.device() != null) {
      KernelNbdDevice.checkAvailable(c.device()); // before fetching anything
    }
    // One registry client (connection pool sized to the fetch threads, one token cache) for every
    // blob.
    RegistryClient registry =
        RegistryClient.create(registryConfig.withMaxConnections(c.fetch().threadsPerOrigin()));
    FetchCore core =
        new FetchCore(c.fetch(), new FetchStats(), BlobCacheDir.tablesDir(c.cacheDir()));
    BlobCacheDir cache = null;
    Overlay overlay = null;
    NbdExport export = null;
    try {
      ImageSource source = Sources.over(registry, c.cacheDir()).open(c.image());
      Images.Resolved resolved = Images.resolve(source, c.image());
      LazyImage img = resolved.lazy();
      cache = BlobCacheDir.open(c.cacheDir(), core);
      ImageDevices.Built built;
      String baseDevice;
      if (resolved.disk() != null) {
        if (c.blob() != null) {
          throw new IllegalArgumentException(
              c.image() + " is a disk image: it has one device, no --blob");
        }
        built = ImageDevices.disk(resolved.disk(), source.blobs(), cache, c.fetch().readTimeout());
        baseDevice = "disk";
      } else if (c.blob() != null) {
        built = ImageDevices.raw(img, c.blob(), source.blobs(), cache);
        baseDevice = "blob " + ImageDevices.selectBlob(img, c.blob()).digest();
      } else {
        built = ImageDevices.flattened(img, source.blobs(), cache, c.fetch().readTimeout());
        baseDevice = "flattened";
      }
      ExportDevice device = built.device();
      String description = built.description();
      if (c.writable() != null) {
        overlay = openOverlay(c, resolved.manifestDigest().toString(), baseDevice, device);
        device = new OverlayDevice(device, overlay);
        description = "writable overlay " + overlay.dir() + " over " + description;
      }
      ExportInfo info =
          new ExportInfo(
              c.name() != null ? c.name() : c.image(),
              description,
              device.size(),
              overlay != null,
              true);
      NbdServer server =
          new NbdServer(
              device,
              info,
              NbdServer.Options.defaults()
                  .withMaxConnections(c.maxConnections())
                  .withReadDeadline(c.fetch().readTimeout()));
      export = new NbdExport(registry, core, cache, built, info, server, overlay);
      export.config = c;
      export.source = source;
      export.resolved = resolved;
      export.baseDevice = baseDevice;
      export.collectCache(c);
      if (address == null && c.device() == null) {
        address =
            new ListenAddress.Unix(
                Path.of(
                    "/run/lazypull/nbd-"
                        + resolved.manifestDigest().hex().substring(0, 12)
                        + ".sock"));
      }
      if (address != null) {
        export.address = address;
        export.bound = server.listen(address, c.allowRemote());
      }
      if (c.device() != null) {
        export.attach(c);
      }
      if (c.control() != null) {
        export.control = ControlServer.start(c.control(), new NbdControl(export));
      }
      return export;
    } catch (IOException | RuntimeException e) {
      if (export != null) {
        export.close();
      } else {
        if (overlay != null) {
          overlay.close();
        }
        if (cache != null) {
          cache.close();
        }
        core.close();
        registry.close();
      }
      throw e;
    }
  }

  /**
   * Opens the export's overlay over {@code base}: the one named, or {@code overlaysDir/<name>} (the
   * export name, else the manifest digest's first 16 hex digits plus the device).
   */
  static Overlay openOverlay(ExportConfig c, String manifest, String baseDevice, ExportDevice base)
      throws IOException {
    ExportConfig.Writable w = c.writable();
    return openOverlay(
        c, w.overlay(), w.overlaysDir(), w.blockSize(), c.name(), manifest, baseDevice, base);
  }

  private static Overlay openOverlay(
      ExportConfig c,
      Path named,
      Path overlaysDir,
      int blockSize,
      String exportName,
      String manifest,
      String baseDevice,
      ExportDevice base)
      throws IOException {
    Path dir = named;
    if (dir == null) {
      String name =
          exportName != null
              ? exportName
              : manifest.substring(manifest.indexOf(':') + 1, manifest.indexOf(':') + 17)
                  + (baseDevice.startsWith("blob ")
                      ? "-"
                          + baseDevice.substring(
                              baseDevice.indexOf(':') + 1, baseDevice.indexOf(':') + 13)
                      : baseDevice.equals("flattened") ? "-flat" : "");
      if (!name.matches("[A-Za-z0-9._-]{1,128}") || name.startsWith(".")) {
        throw new IllegalArgumentException(
            "export name '" + name + "' cannot name an overlay directory; give " + "--overlay DIR");
      }
      dir = overlaysDir.resolve(name);
    }
    OverlayMeta meta =
        new OverlayMeta(
            OverlayMeta.VERSION, blockSize, base.size(), c.image(), manifest, baseDevice);
    return Overlay.open(dir, meta, OverlayDevice.baseOf(base), c.fetch().readTimeout());
  }

  /**
   * Brings the shared cache within its budget now that this export's files are open (in use: the
   * others' go first), and then every {@link #GC_PERIOD}. Best effort: the export serves
   * regardless.
   */
  private void collectCache(ExportConfig c) {
    if (c.cacheBudget() <= 0) {
      return;
    }
    try {
      BlobCacheGc.collect(c.cacheDir(), c.cacheBudget());
    } catch (IOException e) { // the next round tries again
      LOG.warning("cache " + c.cacheDir() + ": collecting to its budget failed: " + e.getMessage());
    }
    gc = BlobCacheGc.keepWithin(c.cacheDir(), c.cacheBudget(), GC_PERIOD);
  }

  private void attach(ExportConfig c) throws IOException {
    KernelNbdDevice d =
        KernelNbdDevice.attach(
            c.device(), server, c.connections(), c.fetch().readTimeout().plusSeconds(30));
    attached = d;
    d.disconnected()
        .whenComplete(
            (v, e) -> {
              if (!closing
                  .get()) { // disconnected from outside (nbd-client -d) or failed: nothing left to
                // serve
                LOG.info(
                    c.device() + " was disconnected" + (e != null ? ": " + e.getMessage() : ""));
                stopped.complete(e == null ? 0 : 1);
              }
            });
  }

  public ExportInfo info() {
    return info;
  }

  /**
   * A writable export of the same base device with an overlay of its own, served by a server of its
   * own: it shares this process's fetch core and host cache (each base byte is fetched once for all
   * forks).
   */
  public record Fork(String name, Overlay overlay, NbdServer server, String uri, long micros) {}

  /**
   * Adds a fork: its overlay ({@code overlayDir}, else {@code <overlaysDir>/<export>-<name>}) over
   * the base device, listening on {@code listen} (else a unix socket named after it beside the
   * control socket).
   *
   * @param blockSize for a new overlay; 0 for the default
   */
  public Fork fork(String name, Path overlayDir, String listen, int blockSize) throws IOException {
    long t0 = System.nanoTime();
    if (closing.get()) {
      throw new IOException("the export is stopping");
    }
    String n = name != null ? name : "fork-" + forkSeq.incrementAndGet();
    if (!n.matches("[A-Za-z0-9._-]{1,64}") || n.startsWith(".")) {
      throw new IllegalArgumentException(
          "fork name '" + n + "': letters, digits, '.', '_', '-', at most 64");
    }
    if (forks.containsKey(n)) {
      throw new IllegalArgumentException("there is a fork named " + n + " already");
    }
    ListenAddress address =
        ListenAddress.parse(
            listen != null
                ? listen
                : "unix:"
                    + (control != null ? config.control().getParent() : Path.of("/run/lazypull"))
                        .resolve(n + ".sock"));
    ExportDevice base = built.device();
    String manifest = resolved.manifestDigest().toString();
    String prefix =
        config.name() != null ? config.name() : resolved.manifestDigest().hex().substring(0, 16);
    Overlay ov =
        openOverlay(
            config,
            overlayDir,
            config.overlaysDir(),
            blockSize,
            prefix + "-" + n,
            manifest,
            baseDevice,
            base);
    NbdServer s = null;
    try {
      OverlayDevice device = new OverlayDevice(base, ov);
      ExportInfo fi =
          new ExportInfo(
              n,
              "fork " + n + ": writable overlay " + ov.dir() + " over " + built.description(),
              device.size(),
              true,
              true);
      s =
          new NbdServer(
              device,
              fi,
              NbdServer.Options.defaults()
                  .withMaxConnections(config.maxConnections())
                  .withReadDeadline(config.fetch().readTimeout()),
              server); // the export's reply pool and timer
      Object b = s.listen(address, config.allowRemote());
      String uri =
          address instanceof ListenAddress.Unix u
              ? "nbd+unix:///?socket=" + u.path()
              : "nbd://" + b.toString().substring(b.toString().lastIndexOf('/') + 1) + "/";
      Fork f = new Fork(n, ov, s, uri, (System.nanoTime() - t0) / 1000);
      if (forks.putIfAbsent(n, f) != null) {
        throw new IllegalArgumentException("there is a fork named " + n + " already");
      }
      return f;
    } catch (IOException | RuntimeException e) {
      if (s != null) {
        s.close();
      }
      ov.close();
      throw e;
    }
  }

  /** The forks now. */
  public List<Fork> forks() {
    return List.copyOf(forks.values());
  }

  /** Stops a fork: its server, then its overlay (flushed); false if there is none of that name. */
  public boolean unfork(String name) {
    Fork f = forks.remove(name);
    if (f == null) {
      return false;
    }
    f.server().close(Duration.ofSeconds(5));
    f.overlay().close();
    return true;
  }

  /** The overlay of {@code fork}, or the export's own when null. */
  Overlay overlayOf(String fork) throws IOException {
    if (fork == null) {
      if (overlay == null) {
        throw new IOException("the export is read-only: it has no overlay (name a fork)");
      }
      return overlay;
    }
    Fork f = forks.get(fork);
    if (f == null) {
      throw new IOException("no fork named " + fork);
    }
    return f.overlay();
  }

  /** A snapshot of the export's overlay, or of a fork's, at a flush point. */
  public Snapshots.Result snapshot(String fork, Snapshots.Options o) throws IOException {
    Overlay ov = overlayOf(fork);
    if (resolved.disk() == null) {
      throw new IOException(
          "snapshots are of disk images; " + config.image() + " is a filesystem image");
    }
    return Snapshots.ofLive(
        ov, resolved.disk(), source, built.device(), config.fetch().readTimeout(), o, registry);
  }

  /** The overlay of a writable export, else null. */
  public Overlay overlay() {
    return overlay;
  }

  /** Whether the export is the flattened EROFS device (else one raw blob). */
  public boolean flattened() {
    return built.layout() != null;
  }

  /** An NBD URI clients can use, or null when the export only backs a kernel device. */
  public String uri() {
    if (address instanceof ListenAddress.Unix u) {
      return "nbd+unix:///?socket=" + u.path();
    }
    if (address == null) {
      return null;
    }
    String b = bound.toString();
    return "nbd://" + b.substring(b.lastIndexOf('/') + 1) + "/";
  }

  /**
   * Completes with an exit status once the export stops: 0 after {@link #close} or a clean
   * disconnect.
   */
  public CompletableFuture<Integer> stopped() {
    return stopped;
  }

  /** One {@code key=value} line of counters (scripts and tests read it at exit). */
  public String statsLine() {
    return statsLine(core.stats(), server.stats());
  }

  static String statsLine(FetchStats fetch, NbdStats server) {
    StringBuilder line =
        new StringBuilder("lazypull nbd: stats fetches=")
            .append(fetch.fetches.sum())
            .append(" bytesFetched=")
            .append(fetch.bytesFetched.sum())
            .append(" fetchFailures=")
            .append(fetch.fetchFailures.sum())
            .append(" chunksVerified=")
            .append(fetch.chunksVerified.sum())
            .append(" integrityFailures=")
            .append(fetch.integrityMismatchesOrigin.sum() + fetch.integrityMismatchesMirror.sum());
    server.snapshot().forEach((k, v) -> line.append(' ').append(k).append('=').append(v));
    return line.toString();
  }

  /**
   * Detaches the kernel device, stops the server, the fetch threads, the collector, the cache;
   * idempotent.
   */
  @Override
  public void close() {
    if (!closing.compareAndSet(false, true)) {
      stopped.join(); // another thread is stopping: wait for it
      return;
    }
    if (control != null) {
      try {
        control.close();
      } catch (IOException e) {
        LOG.fine(() -> "closing the control socket: " + e.getMessage());
      }
    }
    KernelNbdDevice d = attached;
    if (d != null) {
      d.close(); // the kernel sends DISC on its sockets
    }
    for (String f : List.copyOf(forks.keySet())) {
      unfork(f);
    }
    server.close(Duration.ofSeconds(5));
    if (overlay != null) {
      overlay.close(); // flushes what was written since the last FLUSH
    }
    core.close();
    try {
      gc.close();
    } catch (Exception e) {
      LOG.fine(() -> "stopping the cache collector: " + e);
    }
    cache.close();
    registry.close();
    stopped.complete(0);
  }
}

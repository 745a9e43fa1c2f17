package dev.lazypull.cli;

import dev.lazypull.app.NbdExport;
import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigFile;
import dev.lazypull.config.ConfigNode;
import dev.lazypull.registry.RegistryConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull nbd IMAGE}: serve the image's flattened EROFS device (or one raw blob) as a
 * read-only NBD export, fetching lazily into a local cache, on a unix socket or loopback TCP,
 * and/or attached directly to a kernel {@code /dev/nbdN}. Runs until SIGTERM/SIGINT (or until the
 * kernel device is disconnected).
 */
@Command(
    name = "nbd",
    mixinStandardHelpOptions = true,
    description = {
      "Serve IMAGE as an NBD block device, fetched lazily, read-only or with --writable over an overlay: the flattened EROFS device "
          + "(bootstrap at block 0, each data blob at its mapped block; mount with `mount -t erofs /dev/nbdX DIR`, "
          + "Linux >= 6.4), or one raw blob with --blob.",
      "Config file table [nbd]: cache_dir, listen, allow_remote, threads, chunk_size, merge_limit, read_timeout, "
          + "max_connections, connections, log_level, cache_budget, overlays_dir; registry access: the [registry] "
          + "table.",
      "Data blobs of images with chunk digest tables are verified chunk by chunk before they are cached."
    })
final class NbdCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "IMAGE",
      description = "oci:DIR[:TAG] or HOST/REPO[:TAG|@DIGEST].")
  String image;

  @Option(
      names = "--blob",
      paramLabel = "DIGEST",
      description =
          "Export this one layer raw (sha256:HEX, or a unique prefix of its hex) instead of the "
              + "flattened device.")
  String blob;

  @Option(
      names = "--writable",
      description =
          "Serve a writable copy-on-write device: writes go to an overlay "
              + "(a sparse data file and the block states), reads merge it with the image, fetched lazily. FLUSH and FUA "
              + "make writes durable; TRIM and WRITE_ZEROES punch holes.")
  boolean writable;

  @Option(
      names = "--overlay",
      paramLabel = "DIR",
      description =
          "With --writable: the overlay directory, created if "
              + "needed, one export at a time (default: <overlays_dir>/<name or image digest>, overlays_dir defaulting to "
              + "/var/lib/lazypull/overlays).")
  Path overlay;

  @Option(
      names = "--block-size",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description =
          "With --writable: the overlay's block size for a new overlay, a power of two from 512 to 64K "
              + "(default: 4K; an existing overlay keeps its own).")
  Long blockSize;

  @Option(
      names = "--control",
      paramLabel = "SOCKET",
      description =
          "Serve a control socket (JSON lines, root "
              + "only): fork (a new writable export of the same image with its own overlay, sharing this process's cache), "
              + "forks, unfork, flush, snapshot (at a flush point; see lazypull snapshot --control).")
  Path control;

  @Option(
      names = "--listen",
      paramLabel = "unix:PATH|tcp:HOST:PORT",
      description =
          "Where to serve NBD (default: unix:/run/lazypull/nbd-<image>.sock, or none with --device).")
  String listen;

  @Option(
      names = "--allow-remote",
      description =
          "Allow --listen on a non-loopback TCP address. NBD has no "
              + "authentication or encryption here: only on a trusted network.")
  boolean allowRemote;

  @Option(
      names = "--device",
      paramLabel = "/dev/nbdN",
      description = "Attach the export to this kernel nbd device (needs root and the nbd module).")
  String device;

  @Option(
      names = "--connections",
      paramLabel = "N",
      description = "Sockets given to --device (default: " + "min(4, CPUs)).")
  Integer connections;

  @Option(
      names = "--name",
      paramLabel = "NAME",
      description =
          "Export name (default: the IMAGE text; the empty "
              + "name always selects the export too).")
  String name;

  @Option(
      names = "--config",
      paramLabel = "FILE",
      description =
          "TOML config file (default: /etc/lazypull/config.toml if it exists); flags override it.")
  Path config;

  @Option(
      names = "--cache-dir",
      paramLabel = "DIR",
      description =
          "The host cache, kept across restarts and shared with every lazypull process (default: "
              + "/var/cache/lazypull).")
  Path cacheDir;

  @Option(
      names = "--cache-budget",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description =
          "Keep the cache dir within SIZE: at start and every minute, unused blob files are removed, "
              + "least recently used first (default: 0, no budget).")
  Long cacheBudget;

  @Mixin FetchOptions fetch = new FetchOptions();

  @Option(
      names = "--read-timeout",
      paramLabel = "DURATION",
      converter = Units.DurationConverter.class,
      description = "A READ whose data is not fetched within this is answered EIO (default: 30s).")
  Duration readTimeout;

  @Option(
      names = "--max-connections",
      paramLabel = "N",
      description = "Client connections at once (default: 64).")
  Integer maxConnections;

  @Option(
      names = "--log-level",
      paramLabel = "LEVEL",
      description = "error, warn, info, debug or trace.")
  String logLevel;

  @Option(
      names = "--plain-http",
      description =
          "Talk plain HTTP (no TLS) to every registry; for loopback or "
              + "test registries. Per-host: plain_http in a [[registry.host]] entry of the config file.")
  boolean plainHttp;

  @Option(
      names = "--platform",
      paramLabel = "OS/ARCH[/VARIANT]",
      description =
          "Which image of a multi-platform index to serve (default: registry.platform, linux/amd64).")
  String platform;

  @Override
  public Integer call() throws Exception {
    NbdSettings s;
    RegistryConfig registryConfig;
    try {
      ConfigNode file = ConfigFile.load(config);
      s = NbdSettings.resolve(this, file);
      registryConfig = RegistryConfig.from(file.section("registry")).withPlainHttp(plainHttp);
      if (platform != null) {
        try {
          registryConfig = registryConfig.withPlatform(platform);
        } catch (IllegalArgumentException e) {
          throw new ConfigException("--platform: " + e.getMessage(), e);
        }
      }
    } catch (ConfigException e) {
      System.err.println("lazypull nbd: " + e.getMessage());
      return 2;
    }
    Logging.configure(s.logLevel());
    NbdExport export;
    try {
      export = NbdExport.start(s.export(this), registryConfig);
    } catch (IllegalArgumentException e) {
      System.err.println("lazypull nbd: " + e.getMessage());
      return 2;
    }
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  export.close();
                  System.err.println(export.statsLine());
                },
                "lazypull-nbd-shutdown"));
    if (export.uri() != null) {
      System.out.println(
          "serving "
              + export.info().description()
              + ", "
              + export.info().size()
              + " bytes, on "
              + export.uri());
    }
    if (export.overlay() != null) {
      System.out.println(
          "writable, overlay "
              + export.overlay().dir()
              + " (blocks of "
              + export.overlay().blockSize()
              + " bytes)");
    }
    if (device != null) {
      System.out.println(
          "attached "
              + device
              + " ("
              + export.info().size()
              + " bytes, "
              + (writable ? "writable" : "read-only")
              + "): "
              + (export.flattened() ? "mount -t erofs -o ro " + device + " DIR" : "a raw device"));
    }
    System.out.flush();
    return export.stopped().join();
  }
}

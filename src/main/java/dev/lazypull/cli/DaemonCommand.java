package dev.lazypull.cli;

import dev.lazypull.app.Daemon;
import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigFile;
import dev.lazypull.frontend.SetupException;
import dev.lazypull.fscache.KernelDevnode;
import dev.lazypull.registry.RegistryConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code lazypull daemon}: serve the kernel's requests for lazily mounted images through the chosen
 * front end.
 */
@Command(
    name = "daemon",
    mixinStandardHelpOptions = true,
    description =
        "Serve lazily mounted EROFS images (see `lazypull mount`): cachefiles on-demand requests "
            + "(fscache front end) or fanotify pre-content events on the host cache's files (fanotify front end).")
final class DaemonCommand implements Callable<Integer> {
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
          "Cache root, on ext4/xfs/btrfs: the kernel's cachefiles files (fscache/), blob files "
              + "shared with every lazypull process (blobs/) (default: /var/cache/lazypull).")
  Path cacheDir;

  @Option(
      names = "--state-dir",
      paramLabel = "DIR",
      description = "Where the image catalog is kept (default: /var/lib/lazypull).")
  Path stateDir;

  @Option(
      names = "--socket",
      paramLabel = "PATH",
      description = "Control socket (default: " + SocketOption.DEFAULT + ").")
  Path socket;

  @Mixin FetchOptions fetch = new FetchOptions();

  @Option(
      names = "--readahead",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description = "Largest sequential read-ahead window per blob; 0 disables (default: 64M).")
  Long readAhead;

  @Option(
      names = "--read-timeout",
      paramLabel = "DURATION",
      converter = Units.DurationConverter.class,
      description = "A kernel READ not served within this is failed with EIO (default: 30s).")
  Duration readTimeout;

  @Option(
      names = "--cache-budget",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description =
          "Cull least-recently-used, unmounted cache files beyond this size (default: 0 = no limit).")
  Long cacheBudget;

  @Option(
      names = "--metrics",
      paramLabel = "HOST:PORT",
      description =
          "Serve Prometheus metrics on http://HOST:PORT/metrics (loopback only; default: off).")
  String metrics;

  @Option(
      names = "--frontend",
      paramLabel = "auto|fscache|fanotify",
      description =
          "How the kernel asks for missing data: fscache (cachefiles on-demand mode, kernels <= 7.1 built "
              + "with it), fanotify (pre-content events on file-backed EROFS mounts, kernels >= 6.14), or auto: fscache "
              + "where it works, else fanotify (default: auto).")
  String frontend;

  @Option(
      names = "--cache-tag",
      paramLabel = "TAG",
      description = "fscache cache tag (default: lazypull).")
  String cacheTag;

  @Option(
      names = "--plain-http",
      description =
          "Talk plain HTTP (no TLS) to every registry; for loopback or "
              + "test registries. Per-host: plain_http in a [[registry.host]] entry.")
  boolean plainHttp;

  @Option(
      names = "--devnode",
      paramLabel = "PATH",
      defaultValue = KernelDevnode.PATH,
      hidden = true)
  String devnodePath;

  @Option(
      names = "--log-level",
      paramLabel = "LEVEL",
      description = "error, warn, info, debug or trace (default: info).")
  String logLevel;

  @Override
  public Integer call() throws Exception {
    Settings settings;
    RegistryConfig registryConfig;
    try {
      settings = Settings.resolve(this, ConfigFile.load(config));
      registryConfig =
          RegistryConfig.from(settings.file().section("registry")).withPlainHttp(plainHttp);
    } catch (ConfigException e) {
      System.err.println("lazypull daemon: " + e.getMessage());
      return 2;
    }
    Logging.configure(settings.logLevel());
    Daemon daemon;
    try {
      daemon =
          Daemon.builder(settings.daemon())
              .registry(registryConfig)
              .devnodePath(devnodePath)
              .start();
    } catch (SetupException e) {
      System.err.println("lazypull daemon: " + e.getMessage());
      return 1;
    } catch (IOException e) {
      System.err.println("lazypull daemon: " + e.getMessage());
      return 2;
    }
    Runtime.getRuntime().addShutdownHook(new Thread(daemon::close, "lazypull-shutdown"));
    Throwable failure = daemon.awaitTermination();
    if (failure != null) {
      System.err.println("lazypull daemon: " + failure.getMessage());
      return 1;
    }
    return 0;
  }
}

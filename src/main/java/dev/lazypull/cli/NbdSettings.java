package dev.lazypull.cli;

import dev.lazypull.app.DaemonConfig;
import dev.lazypull.app.ExportConfig;
import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigNode;
import dev.lazypull.fetch.FetchSettings;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Effective settings of {@code lazypull nbd} (and of the standalone prefetch and the NBD cache
 * collection, which use its cache and fetch settings): flags over the config file's {@code [nbd]}
 * table over defaults.
 *
 * @param listen null when not configured (the export picks a default)
 * @param connections sockets given to a kernel device
 */
record NbdSettings(
    Path cacheDir,
    String listen,
    boolean allowRemote,
    FetchSettings fetch,
    int maxConnections,
    int connections,
    String logLevel,
    long cacheBudget,
    Path overlaysDir) {
  static final String[] NBD_KEYS = {
    "cache_dir",
    "listen",
    "allow_remote",
    "threads",
    "chunk_size",
    "merge_limit",
    "read_timeout",
    "max_connections",
    "connections",
    "log_level",
    "cache_budget",
    "overlays_dir"
  };

  /** The host cache, shared with the daemon and every other lazypull process. */
  static final Path DEFAULT_CACHE_DIR = DaemonConfig.DEFAULT_CACHE_DIR;

  static NbdSettings resolve(NbdCommand flags, ConfigNode file) throws ConfigException {
    file.allowOnly(Settings.TOP_LEVEL);
    ConfigNode n = file.section("nbd").allowOnly(NBD_KEYS);
    Path cacheDir =
        flags.cacheDir != null
            ? flags.cacheDir
            : Path.of(n.string("cache_dir", DEFAULT_CACHE_DIR.toString()));
    String listen = flags.listen != null ? flags.listen : n.string("listen", null);
    boolean allowRemote = flags.allowRemote || n.bool("allow_remote", false);
    Duration timeout =
        flags.readTimeout != null
            ? flags.readTimeout
            : n.duration("read_timeout", FetchSettings.DEFAULT_READ_TIMEOUT);
    int maxConnections =
        flags.maxConnections != null
            ? flags.maxConnections
            : (int) n.integer("max_connections", ExportConfig.DEFAULT_MAX_CONNECTIONS, 1, 4096);
    int connections =
        flags.connections != null
            ? flags.connections
            : (int) n.integer("connections", ExportConfig.defaultConnections(), 1, 64);
    String logLevel = flags.logLevel != null ? flags.logLevel : n.string("log_level", "info");
    long budget =
        flags.cacheBudget != null
            ? flags.cacheBudget
            : n.size("cache_budget", 0, 0, Long.MAX_VALUE);
    Path overlays = Path.of(n.string("overlays_dir", ExportConfig.DEFAULT_OVERLAYS_DIR.toString()));
    try {
      Logging.parse(logLevel);
      FetchSettings fetch = flags.fetch.resolve(n).withReadTimeout(timeout);
      if (flags.blockSize != null && !flags.writable) {
        throw new IllegalArgumentException("--block-size needs --writable");
      }
      if (flags.overlay != null && !flags.writable) {
        throw new IllegalArgumentException("--overlay needs --writable");
      }
      if (flags.blockSize != null
          && (flags.blockSize < 512
              || flags.blockSize > (64 << 10)
              || Long.bitCount(flags.blockSize) != 1)) {
        throw new IllegalArgumentException(
            "--block-size must be a power of two from 512 to 64K: " + flags.blockSize);
      }
      return new NbdSettings(
          cacheDir.toAbsolutePath(),
          listen,
          allowRemote,
          fetch,
          maxConnections,
          connections,
          logLevel,
          budget,
          overlays.toAbsolutePath());
    } catch (IllegalArgumentException | ArithmeticException e) {
      throw new ConfigException(e.getMessage(), e);
    }
  }

  /** The export of {@code flags}' image with these settings. */
  ExportConfig export(NbdCommand flags) {
    ExportConfig.Writable writable =
        flags.writable
            ? new ExportConfig.Writable(
                flags.overlay == null ? null : flags.overlay.toAbsolutePath(),
                overlaysDir,
                flags.blockSize == null ? 0 : flags.blockSize.intValue())
            : null;
    return new ExportConfig(
        flags.image,
        flags.blob,
        flags.name,
        cacheDir,
        listen,
        allowRemote,
        flags.device,
        connections,
        maxConnections,
        fetch,
        cacheBudget,
        writable,
        flags.control == null ? null : flags.control.toAbsolutePath(),
        overlaysDir);
  }
}

package dev.lazypull.cli;

import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigNode;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Effective settings of {@code lazypull nbd}: flags over the config file's {@code [nbd]} table over defaults.
 *
 * @param listen null when not configured (the command picks a default)
 * @param connections sockets given to a kernel device
 */
record NbdSettings(Path cacheDir, String listen, boolean allowRemote, int fetchThreads, int chunkSize,
    int mergeLimit, Duration readTimeout, int maxConnections, int connections, String logLevel, long cacheBudget) {
  static final String[] NBD_KEYS = {"cache_dir", "listen", "allow_remote", "threads", "chunk_size", "merge_limit",
      "read_timeout", "max_connections", "connections", "log_level", "cache_budget"};
  static final Path DEFAULT_CACHE_DIR = Path.of("/var/cache/lazypull-nbd");

  static NbdSettings resolve(NbdCommand flags, ConfigNode file) throws ConfigException {
    file.allowOnly(Settings.TOP_LEVEL);
    ConfigNode n = file.section("nbd").allowOnly(NBD_KEYS);
    Path cacheDir = flags.cacheDir != null ? flags.cacheDir
        : Path.of(n.string("cache_dir", DEFAULT_CACHE_DIR.toString()));
    String listen = flags.listen != null ? flags.listen : n.string("listen", null);
    boolean allowRemote = flags.allowRemote || n.bool("allow_remote", false);
    int threads = flags.fetch.threads(n);
    long chunk = flags.fetch.chunkSize(n);
    long merge = flags.fetch.mergeLimit(n);
    Duration timeout = flags.readTimeout != null ? flags.readTimeout
        : n.duration("read_timeout", Duration.ofSeconds(30));
    int maxConnections = flags.maxConnections != null ? flags.maxConnections
        : (int) n.integer("max_connections", 64, 1, 4096);
    int connections = flags.connections != null ? flags.connections
        : (int) n.integer("connections", Math.min(4, Runtime.getRuntime().availableProcessors()), 1, 64);
    String logLevel = flags.logLevel != null ? flags.logLevel : n.string("log_level", "info");
    long budget = flags.cacheBudget != null ? flags.cacheBudget : n.size("cache_budget", 0, 0, Long.MAX_VALUE);
    try {
      Logging.parse(logLevel);
      if (Long.bitCount(chunk) != 1 || merge < chunk) {
        throw new IllegalArgumentException("chunk size must be a power of two and merge limit >= chunk size");
      }
      if (budget < 0) {
        throw new IllegalArgumentException("cache budget must not be negative");
      }
      if (timeout.isNegative() || timeout.isZero()) {
        throw new IllegalArgumentException("read timeout must be positive");
      }
      return new NbdSettings(cacheDir.toAbsolutePath(), listen, allowRemote, threads, Math.toIntExact(chunk),
          Math.toIntExact(merge), timeout, maxConnections, connections, logLevel, budget);
    } catch (IllegalArgumentException | ArithmeticException e) {
      throw new ConfigException(e.getMessage(), e);
    }
  }
}

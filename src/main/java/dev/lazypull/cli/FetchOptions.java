package dev.lazypull.cli;

import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigNode;
import dev.lazypull.daemon.DaemonConfig;
import picocli.CommandLine.Option;

/**
 * The fetch core's flags, shared by the daemon and the NBD export (each resolves them over its own config
 * table: {@link Settings}, {@link NbdSettings}). Null when not given.
 */
final class FetchOptions {
  @Option(names = "--threads", paramLabel = "N", description = "Fetch threads (the daemon: per registry, and "
      + "for local layouts; default: 16).")
  Integer threads;

  @Option(names = "--chunk-size", paramLabel = "SIZE", converter = Units.SizeConverter.class,
      description = "Fetch unit, a power of two >= 4K (default: 1M).")
  Long chunkSize;

  @Option(names = "--merge-limit", paramLabel = "SIZE", converter = Units.SizeConverter.class,
      description = "Largest single ranged read when adjacent chunks are merged (default: 4M).")
  Long mergeLimit;

  /** The flag, else the table's {@code threads}, else 16. */
  int threads(ConfigNode table) throws ConfigException {
    return threads != null ? threads : (int) table.integer("threads", 16, 1, 1024);
  }

  /** The flag, else the table's {@code chunk_size}, else 1 MiB. */
  long chunkSize(ConfigNode table) throws ConfigException {
    return chunkSize != null ? chunkSize : table.size("chunk_size", DaemonConfig.DEFAULT_CHUNK_SIZE, 4096, 64 << 20);
  }

  /** The flag, else the table's {@code merge_limit}, else 4 MiB. */
  long mergeLimit(ConfigNode table) throws ConfigException {
    return mergeLimit != null ? mergeLimit : table.size("merge_limit", 4 << 20, 4096, 256 << 20);
  }
}

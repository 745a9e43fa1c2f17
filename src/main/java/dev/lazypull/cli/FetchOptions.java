package dev.lazypull.cli;

import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigNode;
import dev.lazypull.fetch.FetchSettings;
import picocli.CommandLine.Option;

/**
 * The fetch core's flags, shared by the daemon and the NBD export (each resolves them over its own
 * config table: {@link Settings}, {@link NbdSettings}). Null when not given; defaults are {@link
 * FetchSettings}'s.
 */
final class FetchOptions {
  @Option(
      names = "--threads",
      paramLabel = "N",
      description =
          "Fetch threads per origin (each registry, and "
              + "local layouts; default: "
              + FetchSettings.DEFAULT_THREADS
              + ").")
  Integer threads;

  @Option(
      names = "--chunk-size",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description = "Fetch unit, a power of two >= 4K (default: 1M).")
  Long chunkSize;

  @Option(
      names = "--merge-limit",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description = "Largest single ranged read when adjacent chunks are merged (default: 4M).")
  Long mergeLimit;

  /**
   * Flags over the table's {@code threads}, {@code chunk_size} and {@code merge_limit} over the
   * defaults; the fetch buffer is at least a chunk.
   *
   * @throws IllegalArgumentException if the combination is invalid (chunk size not a power of two,
   *     …)
   */
  FetchSettings resolve(ConfigNode table) throws ConfigException {
    int t =
        threads != null
            ? threads
            : (int) table.integer("threads", FetchSettings.DEFAULT_THREADS, 1, 1024);
    long chunk =
        chunkSize != null
            ? chunkSize
            : table.size("chunk_size", FetchSettings.DEFAULT_CHUNK_SIZE, 4096, 64 << 20);
    long merge =
        mergeLimit != null
            ? mergeLimit
            : table.size("merge_limit", FetchSettings.DEFAULT_MERGE_LIMIT, 4096, 256 << 20);
    FetchSettings d = FetchSettings.defaults();
    return new FetchSettings(
        t,
        Math.toIntExact(chunk),
        Math.toIntExact(merge),
        d.readAhead(),
        d.readTimeout(),
        Math.toIntExact(Math.max(chunk, d.bufferSize())));
  }
}

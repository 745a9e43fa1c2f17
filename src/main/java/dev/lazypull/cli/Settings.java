package dev.lazypull.cli;

import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigNode;
import dev.lazypull.daemon.DaemonConfig;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The daemon's effective settings: command-line flags over the config file's {@code [daemon]} table over
 * defaults. Keys are documented in docs/config.md.
 */
record Settings(DaemonConfig daemon, Path socket, String logLevel, ConfigNode file) {
  static final String[] TOP_LEVEL = {"daemon", "registry", "prefetch", "metrics", "nbd"};
  static final String[] DAEMON_KEYS = {"cache_dir", "state_dir", "socket", "cache_tag", "threads", "chunk_size",
      "merge_limit", "read_timeout", "max_outstanding_reads", "log_level", "readahead"};

  static Settings resolve(DaemonCommand flags, ConfigNode file) throws ConfigException {
    file.allowOnly(TOP_LEVEL);
    ConfigNode d = file.section("daemon").allowOnly(DAEMON_KEYS);
    Path cacheDir = flags.cacheDir != null ? flags.cacheDir : Path.of(d.string("cache_dir", "/var/cache/lazypull"));
    Path stateDir = flags.stateDir != null ? flags.stateDir : Path.of(d.string("state_dir", "/var/lib/lazypull"));
    Path socket = flags.socket != null ? flags.socket : Path.of(d.string("socket", SocketOption.DEFAULT));
    String tag = flags.cacheTag != null ? flags.cacheTag : d.string("cache_tag", "lazypull");
    int threads = flags.threads != null ? flags.threads : (int) d.integer("threads", 16, 1, 1024);
    long chunk = flags.chunkSize != null ? flags.chunkSize
        : d.size("chunk_size", DaemonConfig.DEFAULT_CHUNK_SIZE, 4096, 64 << 20);
    long merge = flags.mergeLimit != null ? flags.mergeLimit : d.size("merge_limit", 4 << 20, 4096, 256 << 20);
    Duration deadline = flags.readTimeout != null ? flags.readTimeout
        : d.duration("read_timeout", Duration.ofSeconds(30));
    int outstanding = (int) d.integer("max_outstanding_reads", 1024, 1, 1 << 16);
    String logLevel = flags.logLevel != null ? flags.logLevel : d.string("log_level", "info");
    long readAhead = flags.readAhead != null ? flags.readAhead
        : d.size("readahead", DaemonConfig.DEFAULT_READ_AHEAD, 0, 1L << 30);
    try {
      Logging.parse(logLevel);
      DaemonConfig config = new DaemonConfig(cacheDir.toAbsolutePath(), stateDir.toAbsolutePath(), tag, threads,
          Math.toIntExact(chunk), Math.toIntExact(merge), deadline, outstanding,
          Math.toIntExact(Math.max(chunk, 1 << 20)), readAhead);
      return new Settings(config, socket.toAbsolutePath(), logLevel, file);
    } catch (IllegalArgumentException | ArithmeticException e) {
      throw new ConfigException(e.getMessage(), e);
    }
  }
}

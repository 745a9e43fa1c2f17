package dev.lazypull.cli;

import dev.lazypull.app.DaemonConfig;
import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigNode;
import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.prefetch.PrefetchConfig;
import dev.lazypull.prefetch.PrefetchPolicy;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The daemon's effective settings: command-line flags over the config file's {@code [daemon]} table
 * over defaults. Keys are documented in docs/config.md.
 */
record Settings(DaemonConfig daemon, String logLevel, ConfigNode file) {
  static final String[] TOP_LEVEL = {"daemon", "registry", "prefetch", "metrics", "nbd"};
  static final String[] DAEMON_KEYS = {
    "cache_dir",
    "state_dir",
    "socket",
    "cache_tag",
    "threads",
    "chunk_size",
    "merge_limit",
    "read_timeout",
    "max_outstanding_reads",
    "log_level",
    "cache_budget",
    "gc_interval",
    "images_dir",
    "readahead",
    "frontend"
  };

  static Settings resolve(DaemonCommand flags, ConfigNode file) throws ConfigException {
    file.allowOnly(TOP_LEVEL);
    ConfigNode d = file.section("daemon").allowOnly(DAEMON_KEYS);
    Path cacheDir =
        flags.cacheDir != null
            ? flags.cacheDir
            : Path.of(d.string("cache_dir", DaemonConfig.DEFAULT_CACHE_DIR.toString()));
    Path stateDir =
        flags.stateDir != null
            ? flags.stateDir
            : Path.of(d.string("state_dir", DaemonConfig.DEFAULT_STATE_DIR.toString()));
    Path socket =
        flags.socket != null ? flags.socket : Path.of(d.string("socket", SocketOption.DEFAULT));
    String tag =
        flags.cacheTag != null
            ? flags.cacheTag
            : d.string("cache_tag", DaemonConfig.DEFAULT_CACHE_TAG);
    String frontend = flags.frontend != null ? flags.frontend : d.string("frontend", "auto");
    Duration deadline =
        flags.readTimeout != null
            ? flags.readTimeout
            : d.duration("read_timeout", FetchSettings.DEFAULT_READ_TIMEOUT);
    int outstanding =
        (int)
            d.integer(
                "max_outstanding_reads", DaemonConfig.DEFAULT_MAX_OUTSTANDING_READS, 1, 1 << 16);
    String logLevel = flags.logLevel != null ? flags.logLevel : d.string("log_level", "info");
    long budget =
        flags.cacheBudget != null
            ? flags.cacheBudget
            : d.size("cache_budget", 0, 0, Long.MAX_VALUE);
    Duration gcInterval = d.duration("gc_interval", DaemonConfig.DEFAULT_GC_INTERVAL);
    Path imagesDir = Path.of(d.string("images_dir", DaemonConfig.DEFAULT_IMAGES_DIR.toString()));
    ConfigNode p =
        file.section("prefetch").allowOnly("policy", "threads", "bandwidth", "profile_window");
    PrefetchConfig prefetch;
    try {
      PrefetchConfig d0 = PrefetchConfig.defaults();
      prefetch =
          new PrefetchConfig(
              PrefetchPolicy.parse(p.string("policy", d0.policy().text())),
              (int) p.integer("threads", d0.threads(), 1, 256),
              p.size("bandwidth", d0.bytesPerSecond(), 0, Long.MAX_VALUE),
              p.duration("profile_window", d0.profileWindow()));
    } catch (IllegalArgumentException e) {
      throw new ConfigException(file + ": prefetch: " + e.getMessage(), e);
    }
    ConfigNode m = file.section("metrics").allowOnly("listen", "allow_remote", "hung_threshold");
    String metricsListen = flags.metrics != null ? flags.metrics : m.string("listen", null);
    boolean allowRemote = m.bool("allow_remote", false);
    Duration hung = m.duration("hung_threshold", DaemonConfig.DEFAULT_HUNG_THRESHOLD);
    if (gcInterval.compareTo(Duration.ofSeconds(1)) < 0) {
      throw new ConfigException(file + ": daemon.gc_interval must be at least 1s");
    }
    long readAhead =
        flags.readAhead != null
            ? flags.readAhead
            : d.size("readahead", FetchSettings.DEFAULT_READ_AHEAD, 0, 1L << 30);
    try {
      Logging.parse(logLevel);
      FetchSettings fetch =
          flags.fetch.resolve(d).withReadTimeout(deadline).withReadAhead(readAhead);
      DaemonConfig config =
          DaemonConfig.builder(cacheDir, stateDir)
              .socket(socket)
              .cacheTag(tag)
              .fetch(fetch)
              .maxOutstandingReads(outstanding)
              .cacheBudget(budget)
              .gcInterval(gcInterval)
              .imagesDir(imagesDir)
              .prefetch(prefetch)
              .metrics(metricsListen, allowRemote)
              .hungThreshold(hung)
              .frontend(frontend)
              .runDir(socket.toAbsolutePath().getParent())
              .build();
      return new Settings(config, logLevel, file);
    } catch (IllegalArgumentException | ArithmeticException e) {
      throw new ConfigException(e.getMessage(), e);
    }
  }
}

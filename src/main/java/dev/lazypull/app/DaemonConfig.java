package dev.lazypull.app;

import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.prefetch.PrefetchConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * Everything {@link Daemon} is assembled from (flags over the config file over defaults are
 * resolved by the CLI). Built with {@link #builder}; tests change what they need and keep the rest.
 *
 * @param cacheDir the host cache root: the kernel's cachefiles files under {@code fscache/}, blob
 *     files shared by every front end and process under {@code blobs/}, verified digest tables
 *     under {@code tables/}
 * @param stateDir the image catalog, prefetch policies, access profiles
 * @param socket the control socket, or null for none
 * @param cacheTag fscache cache tag written with {@code tag}
 * @param maxOutstandingReads kernel requests in progress before the front end stops taking more
 * @param cacheBudget bytes the cache may occupy, 0 for no limit
 * @param gcInterval how often the cache is brought within its budget
 * @param imagesDir declared images ({@code *.toml}) registered at start
 * @param prefetch background prefetch settings, or null to turn prefetch off
 * @param metricsListen {@code HOST:PORT} of the Prometheus endpoint, or null for none
 * @param hungThreshold in-flight requests older than this count as hung in metrics
 * @param frontend {@code auto} (fscache where the kernel has cachefiles on-demand mode, else
 *     fanotify where pre-content events work), {@code fscache} or {@code fanotify}
 * @param runDir runtime files that must not outlive a reboot (the fd keeper's record)
 */
public record DaemonConfig(
    Path cacheDir,
    Path stateDir,
    Path socket,
    String cacheTag,
    FetchSettings fetch,
    int maxOutstandingReads,
    long cacheBudget,
    Duration gcInterval,
    Path imagesDir,
    PrefetchConfig prefetch,
    String metricsListen,
    boolean metricsAllowRemote,
    Duration hungThreshold,
    String frontend,
    Path runDir) {

  public static final Path DEFAULT_CACHE_DIR = Path.of("/var/cache/lazypull");
  public static final Path DEFAULT_STATE_DIR = Path.of("/var/lib/lazypull");
  public static final Path DEFAULT_IMAGES_DIR = Path.of("/etc/lazypull/images.d");
  public static final String DEFAULT_CACHE_TAG = "lazypull";
  public static final int DEFAULT_MAX_OUTSTANDING_READS = 1024;
  public static final Duration DEFAULT_GC_INTERVAL = Duration.ofSeconds(60);
  public static final Duration DEFAULT_HUNG_THRESHOLD = Duration.ofSeconds(5);
  public static final Path DEFAULT_RUN_DIR = Path.of("/run/lazypull");
  public static final List<String> FRONTENDS = List.of("auto", "fscache", "fanotify");

  public DaemonConfig {
    if (maxOutstandingReads < 1) {
      throw new IllegalArgumentException("max outstanding reads must be >= 1");
    }
    if (cacheBudget < 0) {
      throw new IllegalArgumentException("cache budget must not be negative");
    }
    if (gcInterval.compareTo(Duration.ofSeconds(1)) < 0) {
      throw new IllegalArgumentException("gc interval must be at least 1s");
    }
    if (!FRONTENDS.contains(frontend)) {
      throw new IllegalArgumentException("front end must be one of " + FRONTENDS + ": " + frontend);
    }
  }

  /** Where cachefiles keeps the kernel's own cache files (fscache front end). */
  public Path fscacheDir() {
    return cacheDir.resolve("fscache");
  }

  public static Builder builder(Path cacheDir, Path stateDir) {
    return new Builder(cacheDir, stateDir);
  }

  public Builder toBuilder() {
    Builder b = new Builder(cacheDir, stateDir);
    b.socket = socket;
    b.cacheTag = cacheTag;
    b.fetch = fetch;
    b.maxOutstandingReads = maxOutstandingReads;
    b.cacheBudget = cacheBudget;
    b.gcInterval = gcInterval;
    b.imagesDir = imagesDir;
    b.prefetch = prefetch;
    b.metricsListen = metricsListen;
    b.metricsAllowRemote = metricsAllowRemote;
    b.hungThreshold = hungThreshold;
    b.frontend = frontend;
    b.runDir = runDir;
    return b;
  }

  /**
   * Defaults for everything but the two directories; no control socket, metrics or prefetch unless
   * set.
   */
  public static final class Builder {
    private Path cacheDir;
    private Path stateDir;
    private Path socket;
    private String cacheTag = DEFAULT_CACHE_TAG;
    private FetchSettings fetch = FetchSettings.defaults();
    private int maxOutstandingReads = DEFAULT_MAX_OUTSTANDING_READS;
    private long cacheBudget;
    private Duration gcInterval = DEFAULT_GC_INTERVAL;
    private Path imagesDir;
    private PrefetchConfig prefetch;
    private String metricsListen;
    private boolean metricsAllowRemote;
    private Duration hungThreshold = DEFAULT_HUNG_THRESHOLD;
    private String frontend = "auto";
    private Path runDir = DEFAULT_RUN_DIR;

    private Builder(Path cacheDir, Path stateDir) {
      this.cacheDir = cacheDir.toAbsolutePath().normalize();
      this.stateDir = stateDir.toAbsolutePath().normalize();
    }

    public Builder cacheDir(Path p) {
      cacheDir = p.toAbsolutePath().normalize();
      return this;
    }

    public Builder stateDir(Path p) {
      stateDir = p.toAbsolutePath().normalize();
      return this;
    }

    public Builder socket(Path p) {
      socket = p == null ? null : p.toAbsolutePath();
      return this;
    }

    public Builder cacheTag(String t) {
      cacheTag = t;
      return this;
    }

    public Builder fetch(FetchSettings f) {
      fetch = f;
      return this;
    }

    /** Edits the fetch settings in place, e.g. {@code b.fetch(f -> f.withReadTimeout(d))}. */
    public Builder fetch(UnaryOperator<FetchSettings> edit) {
      fetch = edit.apply(fetch);
      return this;
    }

    public Builder maxOutstandingReads(int n) {
      maxOutstandingReads = n;
      return this;
    }

    public Builder cacheBudget(long bytes) {
      cacheBudget = bytes;
      return this;
    }

    public Builder gcInterval(Duration d) {
      gcInterval = d;
      return this;
    }

    public Builder imagesDir(Path p) {
      imagesDir = p;
      return this;
    }

    public Builder prefetch(PrefetchConfig p) {
      prefetch = p;
      return this;
    }

    public Builder metrics(String listen, boolean allowRemote) {
      metricsListen = listen;
      metricsAllowRemote = allowRemote;
      return this;
    }

    public Builder hungThreshold(Duration d) {
      hungThreshold = d;
      return this;
    }

    /** {@code auto}, {@code fscache} or {@code fanotify}. */
    public Builder frontend(String f) {
      frontend = f;
      return this;
    }

    public Builder runDir(Path p) {
      runDir = p.toAbsolutePath().normalize();
      return this;
    }

    public DaemonConfig build() {
      return new DaemonConfig(
          cacheDir,
          stateDir,
          socket,
          cacheTag,
          fetch,
          maxOutstandingReads,
          cacheBudget,
          gcInterval,
          imagesDir,
          prefetch,
          metricsListen,
          metricsAllowRemote,
          hungThreshold,
          frontend,
          runDir);
    }
  }
}

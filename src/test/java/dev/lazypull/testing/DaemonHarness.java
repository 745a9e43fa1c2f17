package dev.lazypull.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lazypull.app.Daemon;
import dev.lazypull.app.DaemonConfig;
import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.fanotify.FakeFanotifyGroup;
import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.fetch.FetchStats;
import dev.lazypull.frontend.Frontend;
import dev.lazypull.frontend.RequestStats;
import dev.lazypull.frontend.ServedBlob;
import dev.lazypull.frontend.SetupException;
import dev.lazypull.prefetch.PrefetchManager;
import dev.lazypull.registry.RegistryClient;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * A whole daemon ({@link Daemon}, assembled as the command assembles it) over a {@link FakeKernel},
 * for tests: test-sized settings (small chunks, few threads, a 10 s read deadline, no control
 * socket, no prefetch) that a test edits through {@link #config}. Closing it stops the daemon and
 * the kernel and fails the test on any protocol violation the fake kernel saw.
 */
public final class DaemonHarness implements AutoCloseable {
  /**
   * Test-sized fetch settings: 4 threads, 64 KiB chunks, 256 KiB merges, 128 KiB buffers, 10 s
   * deadline.
   */
  public static final FetchSettings TEST_FETCH =
      new FetchSettings(
          4,
          64 << 10,
          256 << 10,
          FetchSettings.DEFAULT_READ_AHEAD,
          Duration.ofSeconds(10),
          128 << 10);

  public final Path dir;

  /** The fake cachefiles kernel (fscache front end), or null. */
  public final FakeKernel kernel;

  /** The fake fanotify group (fanotify front end), or null. */
  public final FakeFanotifyGroup group;

  public final Daemon daemon;

  private DaemonHarness(Path dir, FakeKernel kernel, FakeFanotifyGroup group, Daemon daemon) {
    this.dir = dir;
    this.kernel = kernel;
    this.group = group;
    this.daemon = daemon;
  }

  public static Builder in(Path dir) {
    return new Builder(dir);
  }

  /** Assembles the daemon; every setting has a test default. */
  public static final class Builder {
    private final Path dir;
    private DaemonConfig.Builder config;
    private ImageSources sources = ImageSources.localOnly();
    private RegistryClient registry;
    private boolean fanotify;

    private Builder(Path dir) {
      this.dir = dir;
      this.config =
          DaemonConfig.builder(dir.resolve("cache"), dir.resolve("state"))
              .cacheTag("t")
              .fetch(TEST_FETCH)
              .maxOutstandingReads(64);
    }

    /** Edits the daemon's config, e.g. {@code c -> c.fetch(f -> f.withReadTimeout(...))}. */
    public Builder config(UnaryOperator<DaemonConfig.Builder> edit) {
      config = edit.apply(config);
      return this;
    }

    public Builder sources(ImageSources s) {
      sources = s;
      return this;
    }

    /**
     * The fanotify front end over a {@link FakeFanotifyGroup} instead of fscache over a fake
     * kernel.
     */
    public Builder fanotify() {
      fanotify = true;
      return this;
    }

    /**
     * Images from registries through {@code client} (owned by the caller), instead of local
     * sources.
     */
    public Builder registry(RegistryClient client) {
      registry = client;
      return this;
    }

    public DaemonHarness start() {
      try {
        FakeKernel kernel =
            fanotify ? null : new FakeKernel(Files.createDirectories(dir.resolve("backing")));
        FakeFanotifyGroup group = fanotify ? new FakeFanotifyGroup() : null;
        Daemon.Builder b = Daemon.builder(config.build());
        b = fanotify ? b.group(group) : b.devnode(kernel);
        Daemon daemon =
            (registry != null ? b.registryClient(registry) : b.sources(sources)).start();
        return new DaemonHarness(dir, kernel, group, daemon);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      } catch (SetupException e) {
        throw new IllegalStateException(e);
      }
    }
  }

  public Catalog catalog() {
    return daemon.catalog();
  }

  public Frontend frontend() {
    return daemon.frontend();
  }

  public RequestStats stats() {
    return daemon.frontend().stats();
  }

  public FetchStats fetchStats() {
    return daemon.fetchStats();
  }

  public PrefetchManager prefetch() {
    return daemon.prefetch();
  }

  /** The served blobs of image {@code fsid}. */
  public List<ServedBlob> served(String fsid) {
    return daemon.servedOf(fsid);
  }

  /** Stops the daemon and the fake kernel; fails on protocol violations. */
  @Override
  public void close() {
    daemon.close();
    if (kernel != null) {
      kernel.close();
      assertEquals(List.of(), kernel.violations, "protocol violations");
    }
    if (group != null) {
      assertEquals(List.of(), group.violations(), "fanotify protocol violations");
    }
  }
}

package dev.lazypull.cli;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.blob.ImageSource;
import dev.lazypull.cache.BlobCacheDir;
import dev.lazypull.cache.BlobCacheFile;
import dev.lazypull.cache.CachePrefetch;
import dev.lazypull.cache.FetchContext;
import dev.lazypull.cache.FetchStats;
import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigFile;
import dev.lazypull.config.ConfigNode;
import dev.lazypull.daemon.PathRanges;
import dev.lazypull.erofs.ByteSource;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.LazyImage;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import dev.lazypull.sys.AlignedBuffers;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * {@code lazypull prefetch IMAGE --standalone}: fills the NBD blob cache ({@code lazypull nbd}'s cache dir) with
 * the image's blobs — all of them, or the bootstrap plus the chunks of the files matching {@code --path} globs
 * — using the [nbd] fetch settings, verifying chunks against the image's digest tables. Blocks until done.
 */
final class StandalonePrefetch {
  private StandalonePrefetch() {}

  static int run(PrefetchCommand c) throws Exception {
    NbdSettings s;
    RegistryConfig rc;
    try {
      ConfigNode file = ConfigFile.load(c.registry.config);
      NbdCommand flags = new NbdCommand(); // the [nbd] table decides the cache dir and fetch settings
      flags.cacheDir = c.cacheDir;
      s = NbdSettings.resolve(flags, file);
      rc = c.registry.registryConfig().withMaxConnections(s.fetchThreads());
    } catch (ConfigException e) {
      System.err.println("lazypull prefetch: " + e.getMessage());
      return 2;
    }
    Logging.configure(s.logLevel());
    ExecutorService pool = NbdCommand.fetchPool(s.fetchThreads());
    int bufferSize = Math.max(s.chunkSize(), 1 << 20);
    ThreadLocal<ByteBuffer> buffers = ThreadLocal.withInitial(() -> AlignedBuffers.allocate(bufferSize));
    FetchStats stats = new FetchStats();
    FetchContext ctx = new FetchContext(pool, s.chunkSize(), s.mergeLimit(), stats, buffers::get);
    try (RegistryClient client = RegistryClient.create(rc)) {
      ImageSource source = RegistryOptions.sources(client).open(c.image);
      LazyImage img = source.resolve();
      try (BlobCacheDir cache = BlobCacheDir.open(s.cacheDir(), ctx)) {
        List<CachePrefetch.Target> targets = plan(c, img, source.blobs(), cache, s);
        if (targets == null) {
          return 1;
        }
        if (s.cacheBudget() > 0) { // room for what we fetch: our files are open (in use) now, the others' go first
          try {
            dev.lazypull.cache.BlobCacheGc.collect(s.cacheDir(), s.cacheBudget());
          } catch (IOException e) {
            System.err.println("lazypull prefetch: collecting " + s.cacheDir() + " to its budget failed: "
                + e.getMessage() + "; prefetching anyway");
          }
        }
        return fetch(c.image, new CachePrefetch(targets), stats, s.cacheDir().toString());
      }
    } finally {
      pool.shutdownNow();
    }
  }

  /** What to fetch: every blob whole, or the bootstrap and the matching files' chunks; null after an error. */
  private static List<CachePrefetch.Target> plan(PrefetchCommand c, LazyImage img, BlobSource blobs,
      BlobCacheDir cache, NbdSettings s) throws Exception {
    BlobCacheFile boot = open(cache, img.bootstrap(), blobs, null, true);
    List<BlobCacheFile> data = new ArrayList<>();
    for (int i = 0; i < img.blobs().size(); i++) {
      data.add(open(cache, img.blobs().get(i), blobs, img.chunkTable(i), false));
    }
    List<CachePrefetch.Target> targets = new ArrayList<>();
    targets.add(new CachePrefetch.Target(boot, null)); // metadata: always, whole
    if (c.paths.isEmpty()) {
      data.forEach(f -> targets.add(new CachePrefetch.Target(f, null)));
      return targets;
    }
    if (img.bootstrap().size() > PathRanges.MAX_BOOTSTRAP_BYTES) {
      System.err.println("lazypull prefetch: the bootstrap of " + c.image + " is " + img.bootstrap().size()
          + " bytes, too large to resolve paths (limit " + PathRanges.MAX_BOOTSTRAP_BYTES + "); use --all");
      return null;
    }
    await(boot.ensure(0, boot.size()), s, "the bootstrap of " + c.image);
    PathRanges.Result ranges;
    try (FileChannel ch = FileChannel.open(boot.path(), StandardOpenOption.READ)) {
      ranges = PathRanges.of(ByteSource.of(ch), c.paths);
    }
    if (ranges.files() == 0) {
      System.err.println("lazypull prefetch: no file of " + c.image + " matches " + c.paths);
      return null;
    }
    System.out.println("matched " + ranges.files() + " files, " + Units.human(ranges.bytes()));
    ranges.byDevice().forEach((device, rs) -> {
      if (device >= 1 && device <= data.size()) {
        targets.add(new CachePrefetch.Target(data.get(device - 1), rs));
      }
    });
    return targets;
  }

  private static BlobCacheFile open(BlobCacheDir cache, Descriptor blob, BlobSource source, Descriptor table,
      boolean bootstrap) throws IOException {
    try {
      return bootstrap ? cache.bootstrap(blob, source) : cache.file(blob, source, table);
    } catch (dev.lazypull.cache.CacheFileInUseException e) {
      throw new IOException(e.getMessage() + ": is `lazypull nbd` serving this image from " + cache.dir()
          + "? Its cache files are locked while it runs; stop it and prefetch, or let it fetch on demand", e);
    }
  }

  private static void await(java.util.concurrent.CompletableFuture<Void> f, NbdSettings s, String what)
      throws IOException, InterruptedException {
    try {
      f.get(s.readTimeout().toMillis() * 4, TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      throw new IOException("fetching " + what + ": " + e.getCause().getMessage(), e.getCause());
    } catch (TimeoutException e) {
      throw new IOException("fetching " + what + " took longer than " + s.readTimeout().multipliedBy(4));
    }
  }

  /** Runs the prefetch with progress; 0 when everything planned is cached, 1 otherwise. */
  private static int fetch(String name, CachePrefetch prefetch, FetchStats stats, String cacheDir)
      throws InterruptedException {
    boolean terminal = System.console() != null;
    long planned = prefetch.plannedBytes();
    long t0 = System.nanoTime();
    var done = prefetch.start();
    long lastPlain = t0;
    while (!done.isDone()) {
      Thread.sleep(terminal ? 250 : 100);
      long now = System.nanoTime();
      if (terminal || now - lastPlain >= TimeUnit.SECONDS.toNanos(5)) {
        PrefetchCommand.print(name, prefetch.readyBytes(), planned, true, terminal);
        lastPlain = now;
      }
    }
    double secs = (System.nanoTime() - t0) / 1e9;
    long ready = prefetch.readyBytes();
    PrefetchCommand.print(name, ready, planned, false, terminal);
    if (terminal) {
      System.out.println();
    }
    long fetched = stats.bytesFetched.sum();
    System.out.printf(Locale.ROOT, "fetched %s in %.1f s (%.0f MiB/s) into %s%s%n", Units.human(fetched), secs,
        fetched / 1048576.0 / Math.max(secs, 1e-3), cacheDir,
        stats.chunksVerified.sum() > 0 ? ", " + stats.chunksVerified.sum() + " chunks verified" : "");
    List<String> errors = prefetch.errors();
    for (String e : errors) {
      System.err.println("lazypull prefetch: " + e);
    }
    return errors.isEmpty() && ready == planned ? 0 : 1;
  }
}

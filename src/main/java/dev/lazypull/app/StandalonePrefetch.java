package dev.lazypull.app;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.blob.ImageSource;
import dev.lazypull.erofs.ByteSource;
import dev.lazypull.fetch.BlobCacheDir;
import dev.lazypull.fetch.BlobCacheFile;
import dev.lazypull.fetch.BlobCacheGc;
import dev.lazypull.fetch.BlobRef;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.fetch.FetchStats;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.DiskImage;
import dev.lazypull.image.LazyImage;
import dev.lazypull.nbd.device.ImageDevices;
import dev.lazypull.prefetch.CachePrefetch;
import dev.lazypull.prefetch.PathRanges;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Logger;

/**
 * {@code lazypull prefetch IMAGE --standalone}, assembled: fills the host cache with the image's
 * blobs — all of them, or the bootstrap plus the chunks of the files matching path globs — through
 * this process's own fetch core, verifying chunks against the image's digest tables. Other
 * processes using the cache meanwhile (an export, a mount) share the work: each chunk is fetched
 * once.
 */
public final class StandalonePrefetch implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(StandalonePrefetch.class.getName());

  /** Files and bytes the path globs matched (0, 0 for a whole-image prefetch). */
  public record Matched(long files, long bytes) {}

  private final RegistryClient registry;
  private final FetchCore core;
  private final BlobCacheDir cache;
  private CachePrefetch prefetch;
  private Matched matched = new Matched(0, 0);

  private StandalonePrefetch(RegistryClient registry, FetchCore core, BlobCacheDir cache) {
    this.registry = registry;
    this.core = core;
    this.cache = cache;
  }

  /**
   * Resolves the image and plans what to fetch (after fetching the bootstrap, to resolve {@code
   * paths}); then brings the cache within {@code cacheBudget} (0: none), this image's files being
   * in use.
   *
   * @throws IOException if the image cannot be resolved, no file matches, or the bootstrap is too
   *     large for paths
   */
  public static StandalonePrefetch plan(
      String image,
      List<String> paths,
      Path cacheDir,
      FetchSettings fetch,
      long cacheBudget,
      RegistryConfig registryConfig)
      throws IOException {
    RegistryClient registry =
        RegistryClient.create(registryConfig.withMaxConnections(fetch.threadsPerOrigin()));
    FetchCore core = new FetchCore(fetch, new FetchStats(), BlobCacheDir.tablesDir(cacheDir));
    StandalonePrefetch p = null;
    try {
      ImageSource source = Sources.over(registry, cacheDir).open(image);
      Images.Resolved resolved = Images.resolve(source, image);
      if (resolved.disk() != null && !paths.isEmpty()) {
        throw new IOException(
            image + " is a disk image (a block device, no files): prefetch it with --all");
      }
      p = new StandalonePrefetch(registry, core, BlobCacheDir.open(cacheDir, core));
      Duration timeout = fetch.readTimeout().multipliedBy(4);
      p.prefetch =
          new CachePrefetch(
              resolved.disk() != null
                  ? p.diskTargets(resolved.disk(), source.blobs(), timeout)
                  : p.targets(resolved.lazy(), source.blobs(), paths, timeout),
              fetch.mergeLimit(),
              fetch.threadsPerOrigin());
    } catch (IOException | RuntimeException e) {
      if (p != null) {
        p.close();
      } else {
        core.close();
        registry.close();
      }
      throw e;
    }
    if (cacheBudget
        > 0) { // room for what we fetch: our files are open (in use) now, the others' go first
      try {
        BlobCacheGc.collect(cacheDir, cacheBudget);
      } catch (IOException e) {
        LOG.warning(
            "collecting "
                + cacheDir
                + " to its budget failed: "
                + e.getMessage()
                + "; prefetching anyway");
      }
    }
    return p;
  }

  /** Every blob whole, or the bootstrap and the matching files' chunks. */
  private List<CachePrefetch.Target> targets(
      LazyImage img, BlobSource blobs, List<String> paths, Duration timeout) throws IOException {
    BlobCacheFile boot = cache.file(BlobRef.metadata(img.bootstrap(), img.reference()), blobs);
    List<BlobCacheFile> data = new ArrayList<>();
    for (int i = 0; i < img.blobs().size(); i++) {
      data.add(
          cache.file(BlobRef.data(img.blobs().get(i), img.chunkTable(i), img.reference()), blobs));
    }
    await(boot.fetcher(), timeout, "the bootstrap of " + img.reference());
    for (BlobCacheFile f :
        data) { // tables loaded and checked before anything is fetched: errors come early
      await(f.fetcher(), timeout, "the chunk digest table of " + f.ref().blob().digest());
    }
    List<CachePrefetch.Target> targets = new ArrayList<>();
    targets.add(new CachePrefetch.Target(boot, null)); // metadata: always, whole
    if (paths.isEmpty()) {
      data.forEach(f -> targets.add(new CachePrefetch.Target(f, null)));
      return targets;
    }
    if (img.bootstrap().size() > PathRanges.MAX_BOOTSTRAP_BYTES) {
      throw new IOException(
          "the bootstrap of "
              + img.reference()
              + " is "
              + img.bootstrap().size()
              + " bytes, too large to resolve paths (limit "
              + PathRanges.MAX_BOOTSTRAP_BYTES
              + "); use --all");
    }
    await(boot.ensure(0, boot.size()), timeout, "the bootstrap of " + img.reference());
    PathRanges.Result ranges;
    try (FileChannel ch = FileChannel.open(boot.path(), StandardOpenOption.READ)) {
      ranges = PathRanges.of(ByteSource.of(ch), paths);
    }
    if (ranges.files() == 0) {
      throw new IOException("no file of " + img.reference() + " matches " + paths);
    }
    matched = new Matched(ranges.files(), ranges.bytes());
    ranges
        .byDevice()
        .forEach(
            (device, rs) -> {
              if (device >= 1 && device <= data.size()) {
                targets.add(new CachePrefetch.Target(data.get(device - 1), rs));
              }
            });
    return targets;
  }

  /**
   * A disk image (an imported disk or a snapshot): its base disk's chunks that are not all zero,
   * and every diff layer's data whole — everything `lazypull nbd` of it could read, including base
   * chunks that a diff overwrites (more than a reader of the export would fetch).
   */
  private List<CachePrefetch.Target> diskTargets(DiskImage disk, BlobSource blobs, Duration timeout)
      throws IOException {
    BlobCacheFile base =
        cache.file(BlobRef.data(disk.disk(), disk.diskTable(), disk.reference()), blobs);
    ChunkDigestTable table =
        await(base.fetcher(), timeout, "the chunk digest table of " + disk.disk().digest()).table();
    List<CachePrefetch.Target> targets = new ArrayList<>();
    targets.add(new CachePrefetch.Target(base, ImageDevices.nonZeroRanges(table, disk.size())));
    for (DiskImage.Diff d : disk.diffs()) {
      if (d.data() == null) {
        continue; // a diff of zeros and trims only
      }
      BlobCacheFile f = cache.file(BlobRef.data(d.data(), d.table(), disk.reference()), blobs);
      await(f.fetcher(), timeout, "the chunk digest table of " + d.data().digest());
      targets.add(new CachePrefetch.Target(f, null));
    }
    return targets;
  }

  private static <T> T await(CompletableFuture<T> f, Duration timeout, String what)
      throws IOException {
    try {
      return f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      Throwable c = e.getCause() != null ? e.getCause() : e;
      throw new IOException("fetching " + what + ": " + c.getMessage(), c);
    } catch (TimeoutException e) {
      throw new IOException("fetching " + what + " took longer than " + timeout);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while fetching " + what);
    }
  }

  public Matched matched() {
    return matched;
  }

  /** The planned fetches; {@link CachePrefetch#start} runs them. */
  public CachePrefetch prefetch() {
    return prefetch;
  }

  public FetchStats stats() {
    return core.stats();
  }

  public Path cacheDir() {
    return cache.root();
  }

  @Override
  public void close() {
    core.close();
    cache.close();
    registry.close();
  }
}

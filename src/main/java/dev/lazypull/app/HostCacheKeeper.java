package dev.lazypull.app;

import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.fetch.BlobCacheGc;
import dev.lazypull.frontend.CacheKeeper;
import dev.lazypull.image.Descriptor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Keeps the host blob cache within a budget (the fanotify front end's cache): {@link BlobCacheGc}
 * removes files nobody on the host uses, least recently used first; a file a prepared image serves
 * is in use (this daemon holds its in-use lock), so no file under a live mount is ever removed.
 */
final class HostCacheKeeper implements CacheKeeper {
  private final Path root;
  private final long budget;

  HostCacheKeeper(Path root, long budget) {
    this.root = root;
    this.budget = budget;
  }

  @Override
  public long budget() {
    return budget;
  }

  @Override
  public long usage() throws IOException {
    return BlobCacheGc.usage(root);
  }

  @Override
  public Report collect(long budget) throws IOException {
    BlobCacheGc.Report r = BlobCacheGc.collect(root, budget);
    return new Report(
        r.usageBefore(),
        r.usageAfter(),
        r.budget(),
        r.removed(),
        r.bytesFreed(),
        r.inUse(),
        List.of());
  }

  @Override
  public Report evict(ImageRecord image, List<ImageRecord> all, boolean includeShared)
      throws IOException {
    long before = usage();
    int removed = 0;
    int inUse = 0;
    List<String> skipped = new ArrayList<>();
    List<Descriptor> blobs = new ArrayList<>(image.blobs());
    blobs.add(image.bootstrap());
    for (Descriptor d : blobs) {
      boolean shared =
          all.stream()
              .anyMatch(
                  o ->
                      !o.fsid().equals(image.fsid())
                          && (o.blobs().contains(d) || o.bootstrap().equals(d)));
      if (shared && !includeShared) {
        skipped.add(d.digest().toString());
        continue;
      }
      Path file = BlobCacheGc.blobFile(root, d.digest());
      if (!Files.exists(file)) {
        continue;
      }
      if (BlobCacheGc.removeIfUnused(file)) {
        removed++;
      } else {
        inUse++;
        skipped.add(d.digest().toString());
      }
    }
    long after = usage();
    return new Report(before, after, budget, removed, before - after, inUse, skipped);
  }

  @Override
  public void saveUsage() {
    // the files' mtimes are the LRU order: nothing to save
  }
}

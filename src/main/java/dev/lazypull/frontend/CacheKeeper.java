package dev.lazypull.frontend;

import dev.lazypull.catalog.ImageRecord;
import java.io.IOException;
import java.util.List;

/**
 * Keeps a front end's cache within its budget — the kernel's cachefiles files (fscache), the host
 * blob cache (fanotify) — never touching a file the kernel is using; and evicts an image's files on
 * request.
 */
public interface CacheKeeper {
  /** What a collection or eviction did; sizes are allocated bytes. */
  record Report(
      long usageBefore,
      long usageAfter,
      long budget,
      int culled,
      long bytesFreed,
      int inUse,
      List<String> skipped) {}

  /** Bytes the cache may occupy; 0 means no limit. */
  long budget();

  /** Bytes the cache occupies on disk now. */
  long usage() throws IOException;

  /**
   * Removes unused files, least recently used first, until usage is at most {@code budget} (0: only
   * measure).
   */
  Report collect(long budget) throws IOException;

  /**
   * Removes the cache files of {@code image}'s blobs not in use (shared ones only with {@code
   * includeShared}).
   */
  Report evict(ImageRecord image, List<ImageRecord> all, boolean includeShared) throws IOException;

  /** Persists what it knows of recent use (at shutdown). */
  void saveUsage();
}

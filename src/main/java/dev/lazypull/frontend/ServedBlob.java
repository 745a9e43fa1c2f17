package dev.lazypull.frontend;

import dev.lazypull.catalog.BlobBinding;
import dev.lazypull.fetch.ChunkFetcher;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;

/**
 * One blob a front end serves to the kernel right now — an fscache object, a fanotify-marked cache
 * file — as the rest of the daemon sees it: which image and device it is, and its fetcher.
 * Prefetch, access profiles, cache bookkeeping and status work on these, whatever the front end.
 */
public interface ServedBlob {
  /** Names it for status: a kernel object id (fscache), a cache file (fanotify). */
  String id();

  /** The registered image, device and blob this serves. */
  BlobBinding binding();

  /** The blob's fetcher, once its verification is set up and its cache file probed. */
  CompletableFuture<ChunkFetcher> fetcher();

  /** Whether the front end has stopped serving it (kernel CLOSE, umount, shutdown). */
  boolean isClosed();

  /**
   * Makes {@code [offset, offset+length)} present ahead of any reader, new fetches run on {@code
   * runOn} (the prefetch pool, behind on-demand reads).
   */
  default CompletableFuture<Void> prefetch(long offset, long length, Executor runOn) {
    return fetcher().thenCompose(f -> f.ensure(offset, length, runOn));
  }

  /** Bytes of the blob already cached (0 until the fetcher is ready). */
  default long readyBytes() {
    ChunkFetcher f = fetcher().getNow(null);
    return f == null ? 0 : f.map().readyBytes();
  }
}

package dev.lazypull.fanotify;

import dev.lazypull.catalog.BlobBinding;
import dev.lazypull.fetch.BlobCacheFile;
import dev.lazypull.fetch.ChunkFetcher;
import dev.lazypull.frontend.ServedBlob;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A host cache file that file-backed EROFS mounts read as a data device: marked for pre-content
 * events while parts of it are missing, unmarked once it is complete (then reads cost no upcall at
 * all). Images sharing the blob share the file, its mark and its page cache; each of them sees it
 * as one of its {@link Served} blobs.
 */
final class WatchedFile {
  final BlobCacheFile file;
  final FileKey key;

  /** The images' views of this file, one per (image, device) that uses it. */
  final List<Served> served = new CopyOnWriteArrayList<>();

  /** Whether the file carries this group's mark (guarded by the front end). */
  boolean marked;

  WatchedFile(BlobCacheFile file, FileKey key) {
    this.file = file;
    this.key = key;
  }

  /** The file's fetcher once set up, else null. */
  ChunkFetcher fetcherNow() {
    return file.fetcher().getNow(null);
  }

  /** Whether every chunk of the file is present (then no access needs an event). */
  boolean complete() {
    ChunkFetcher f = fetcherNow();
    return f != null && f.map().allReady();
  }

  /** One image's device backed by a watched file: what prefetch, profiles and status see. */
  static final class Served implements ServedBlob {
    final WatchedFile watched;
    private final BlobBinding binding;
    private volatile boolean closed;

    Served(WatchedFile watched, BlobBinding binding) {
      this.watched = watched;
      this.binding = binding;
    }

    @Override
    public String id() {
      return watched.file.path().getFileName().toString().substring(0, 12);
    }

    @Override
    public BlobBinding binding() {
      return binding;
    }

    @Override
    public CompletableFuture<ChunkFetcher> fetcher() {
      return watched.file.fetcher();
    }

    @Override
    public boolean isClosed() {
      return closed;
    }

    void close() {
      closed = true;
    }

    @Override
    public String toString() {
      return binding.image().fsid()
          + " device "
          + binding.deviceId()
          + " ("
          + watched.file.path()
          + ")";
    }
  }
}

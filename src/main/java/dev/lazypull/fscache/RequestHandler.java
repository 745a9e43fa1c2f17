package dev.lazypull.fscache;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.catalog.BlobBinding;
import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.fetch.BlobRef;
import dev.lazypull.fetch.ChunkFetcher;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.fetch.ReadAhead;
import dev.lazypull.frontend.BlobListener;
import dev.lazypull.frontend.RequestStats;
import dev.lazypull.image.LazyImage;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.OnceLogger;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Answers the kernel's OPEN, READ and CLOSE requests. The contract with the kernel: every OPEN gets
 * exactly one {@code copen}, every READ exactly one READ_COMPLETE — with the range present, or
 * without data so the reader gets EIO — and CLOSE releases the object's fds.
 *
 * <p>{@link #onRead} runs on the poll thread and does no blocking I/O: it queues fetches and
 * attaches the reply to their completion. OPEN and CLOSE are serialised on one object thread;
 * {@code copen} is a devnode write and the blob source may have to be opened.
 */
final class RequestHandler {
  private static final Logger LOG = Logger.getLogger(RequestHandler.class.getName());

  /**
   * Larger READs are treated as malformed and failed (the kernel asks for at most a folio or a
   * chunk).
   */
  static final long MAX_READ_LENGTH = 64L << 20;

  private final Devnode devnode;
  private final Catalog catalog;
  private final ImageSources sources;
  private final FetchCore core;
  private final Duration readDeadline;
  private final RequestStats stats;
  private final Map<Integer, CacheObject> objects = new ConcurrentHashMap<>();

  /**
   * msg_id → arrival (nanoTime) of every READ not yet answered: in-flight and hung READs for
   * metrics.
   */
  private final Map<Integer, Long> inflightReads = new ConcurrentHashMap<>();

  private final OnceLogger once = new OnceLogger(LOG);
  private final Runnable readDone;
  private final List<BlobListener> listeners = new CopyOnWriteArrayList<>();

  /**
   * @param readDone called once per READ when its reply has been sent (releases a poll-loop permit)
   */
  RequestHandler(
      Devnode devnode,
      Catalog catalog,
      ImageSources sources,
      FetchCore core,
      RequestStats stats,
      Runnable readDone) {
    this.devnode = devnode;
    this.catalog = catalog;
    this.sources = sources;
    this.core = core;
    this.readDeadline = core.settings().readTimeout();
    this.stats = stats;
    this.readDone = readDone;
  }

  // ---- OPEN
  // ----------------------------------------------------------------------------------------------

  void onOpen(CachefilesMsg.Open open) {
    stats.opens.increment();
    try {
      devnode.adoptAnonFd(open.fd());
    } catch (IOException e) {
      LOG.warning(
          "OPEN "
              + open.msgId()
              + ": cannot set close-on-exec on fd "
              + open.fd()
              + ": "
              + e.getMessage());
    }
    Optional<BlobBinding> found = catalog.lookup(open.volumeKey(), open.cookieKey());
    if (found.isEmpty()) {
      refuse(
          open,
          Errno.ENOENT,
          "no registered image has volume '"
              + CachefilesMsg.printable(open.volumeKey())
              + "' and cookie '"
              + open.printableCookieKey()
              + "'");
      return;
    }
    BlobBinding binding = found.get();
    CacheObject existing = objects.get(open.objectId());
    if (existing != null && existing.addFd(open.fd())) {
      // Re-delivered OPEN (after restore): same object, one more fd. Answer with the same stable
      // size.
      copen(open, LazyImage.deviceSize(binding.blob()), existing);
      return;
    }
    BlobSource source;
    try {
      source = sources.open(binding.image().reference()).blobs();
    } catch (IOException | RuntimeException e) {
      refuse(
          open,
          Errno.EIO,
          "cannot open the source of " + binding.image().reference() + ": " + e.getMessage());
      return;
    }
    CacheObject object =
        new CacheObject(
            open.objectId(), open.volumeKey(), open.cookieKey(), binding, open.fd(), devnode);
    BlobRef ref =
        binding.isBootstrap()
            ? BlobRef.metadata(binding.blob(), binding.image().reference())
            : BlobRef.data(
                binding.blob(),
                binding.image().chunkTable(binding.deviceId()),
                binding.image().reference());
    objects.put(open.objectId(), object);
    if (copen(open, LazyImage.deviceSize(binding.blob()), object)) {
      object.start(self -> core.open(ref, source, self));
      for (BlobListener l : listeners) {
        l.opened(object);
      }
    }
    LOG.fine(
        () ->
            "OPEN "
                + object
                + " fsid "
                + binding.image().fsid()
                + " device "
                + binding.deviceId()
                + " size "
                + LazyImage.deviceSize(binding.blob()));
  }

  private boolean copen(CachefilesMsg.Open open, long size, CacheObject object) {
    try {
      devnode.command(DevnodeCommand.copen(open.msgId(), size));
      return true;
    } catch (IOException e) {
      stats.replyErrors.increment();
      LOG.warning("copen " + open.msgId() + " for " + object + " failed: " + e.getMessage());
      objects.remove(open.objectId(), object);
      object.markClosed();
      return false;
    }
  }

  private void refuse(CachefilesMsg.Open open, int errno, String why) {
    stats.opensRefused.increment();
    once.warn(
        "refuse:" + why,
        "refusing OPEN " + open.msgId() + " (object " + open.objectId() + "): " + why);
    try {
      devnode.command(DevnodeCommand.copenError(open.msgId(), errno));
    } catch (IOException e) {
      stats.replyErrors.increment();
      LOG.warning("copen " + open.msgId() + ",-" + errno + " failed: " + e.getMessage());
    } finally {
      devnode.closeAnonFd(open.fd());
    }
  }

  // ---- CLOSE
  // ---------------------------------------------------------------------------------------------

  void onClose(CachefilesMsg.Close close) {
    stats.closes.increment();
    CacheObject object = objects.remove(close.objectId());
    if (object == null) {
      LOG.fine(() -> "CLOSE for unknown object " + close.objectId());
      return;
    }
    object.markClosed();
    for (BlobListener l : listeners) {
      l.closed(object);
    }
    LOG.fine(() -> "CLOSE " + object);
  }

  // ---- READ
  // ----------------------------------------------------------------------------------------------

  /**
   * Called on the poll thread. Exactly one reply is sent, now or when the fetch completes or times
   * out.
   */
  void onRead(CachefilesMsg.Read read) {
    stats.reads.increment();
    CacheObject object = objects.get(read.objectId());
    if (object == null || !object.acquire()) {
      answerOrphan(read.msgId(), read.objectId(), "READ for unknown object " + read.objectId());
      return;
    }
    inflightReads.put(read.msgId(), System.nanoTime());
    long offset = read.offset();
    long length = read.length();
    if (length == 0) {
      finish(object, read, null);
      return;
    }
    if (offset < 0 || length < 0 || length > MAX_READ_LENGTH || offset + length < 0) {
      stats.readsInvalid.increment();
      once.warn(
          "badread:" + object.objectId,
          object
              + ": failing READ of "
              + Long.toUnsignedString(length)
              + " bytes at "
              + Long.toUnsignedString(offset));
      finish(object, read, new IOException("invalid READ range"));
      return;
    }
    stats.readBytesRequested.add(length);
    notifyRead(object, offset, length);
    long deviceSize = LazyImage.deviceSize(object.binding().blob());
    if (offset + length > deviceSize + 4095) {
      once.warn(
          "pastend:" + object.objectId,
          object
              + ": READ "
              + offset
              + "+"
              + length
              + " goes past the blob's "
              + deviceSize
              + " bytes; serving what exists");
    }
    CompletableFuture<Void> present;
    try {
      CompletableFuture<ChunkFetcher> fetcher = object.fetcher();
      ChunkFetcher ready = fetcher.getNow(null);
      if (ready != null) {
        present = ready.ensure(offset, length);
        readAhead(object, ready, offset, length);
      } else { // the first READs after OPEN: once the fetcher is set up
        present =
            fetcher.thenCompose(
                f -> {
                  CompletableFuture<Void> p = f.ensure(offset, length);
                  readAhead(object, f, offset, length);
                  return p;
                });
      }
    } catch (RuntimeException e) {
      present = CompletableFuture.failedFuture(e);
    }
    present
        .orTimeout(readDeadline.toMillis(), TimeUnit.MILLISECONDS)
        .whenComplete((v, error) -> finish(object, read, error));
  }

  /**
   * Queues read-ahead behind a READ whose own fetch is queued, before its reply can release the
   * object. Listeners see what this mount made present, not only what it asked for: a profile
   * recorded from READs alone misses the ranges read-ahead filled, and replaying it would leave
   * those for READs again.
   */
  private void readAhead(CacheObject object, ChunkFetcher fetcher, long offset, long length) {
    ReadAhead.Range ahead = fetcher.readAhead(offset, length);
    if (ahead != null) {
      notifyRead(object, ahead.offset(), ahead.length());
    }
  }

  /**
   * Tells the listeners; on the READ's path before its reply is arranged, so nothing they throw may
   * escape.
   */
  private void notifyRead(CacheObject object, long offset, long length) {
    for (BlobListener l : listeners) {
      try {
        l.read(object, offset, length);
      } catch (RuntimeException e) {
        once.warn("listener:" + l.getClass().getName(), "READ listener " + l + " failed: " + e);
      }
    }
  }

  private void finish(CacheObject object, CachefilesMsg.Read read, Throwable error) {
    try {
      if (error == null) {
        stats.readsOk.increment();
      } else {
        Throwable cause =
            error instanceof CompletionException && error.getCause() != null
                ? error.getCause()
                : error;
        if (cause instanceof TimeoutException) {
          stats.readsTimedOut.increment();
          once.warn(
              "timeout:" + object.objectId,
              object
                  + ": READ "
                  + read.offset()
                  + "+"
                  + read.length()
                  + " not ready after "
                  + readDeadline
                  + "; failing it with EIO");
        } else {
          stats.readsFailed.increment();
          once.warn(
              "fail:" + object.objectId + ":" + cause.getMessage(),
              object + ": READ " + read.offset() + "+" + read.length() + " failed: " + cause);
        }
      }
      devnode.readComplete(object.fd(), read.msgId());
    } catch (IOException | RuntimeException e) {
      stats.replyErrors.increment();
      LOG.log(
          Level.WARNING, object + ": READ_COMPLETE " + read.msgId() + " failed: " + e.getMessage());
    } finally {
      Long t0 = inflightReads.remove(read.msgId());
      if (t0 != null) {
        stats.readLatency.observeNanos(System.nanoTime() - t0);
      }
      object.release();
      readDone.run();
    }
  }

  int inflightReadCount() {
    return inflightReads.size();
  }

  /** Arrival times (nanoTime) of READs not yet answered. */
  Collection<Long> inflightReadStarts() {
    return inflightReads.values();
  }

  /**
   * A READ we cannot map to an object we hold. The reply must go through an fd of the READ's
   * object, and we have none: try every fd we hold — kernels before 6.10 accept any anon fd, newer
   * ones reject the wrong object with EINVAL — so the reader is released if it can be at all.
   */
  private void answerOrphan(int msgId, int objectId, String why) {
    stats.readsOrphaned.increment();
    once.warn("orphan:" + objectId, why + "; answering without data");
    try {
      List<CacheObject> candidates = new ArrayList<>(objects.values());
      for (CacheObject o : candidates) {
        if (!o.acquire()) {
          continue;
        }
        try {
          devnode.readComplete(o.fd(), msgId);
          return;
        } catch (IOException e) {
          // not this object's fd; try the next
        } finally {
          o.release();
        }
      }
      LOG.severe(
          "READ "
              + msgId
              + " of object "
              + objectId
              + " cannot be answered: no fd of that object is held");
    } finally {
      readDone.run();
    }
  }

  // ---- malformed
  // -----------------------------------------------------------------------------------------

  void onMalformed(CachefilesMsg.Malformed bad) {
    stats.malformed.increment();
    once.warn(
        "malformed:" + bad.opcode() + ":" + bad.reason(),
        "malformed cachefiles message (msg "
            + bad.msgId()
            + ", opcode "
            + bad.opcode()
            + ", object "
            + bad.objectId()
            + "): "
            + bad.reason());
    if (bad.opcode() == CachefilesMsg.OPCODE_OPEN && bad.msgId() >= 0) {
      try {
        devnode.command(DevnodeCommand.copenError(bad.msgId(), Errno.EINVAL));
      } catch (IOException e) {
        stats.replyErrors.increment();
      } finally {
        if (bad.fd() >= 0) {
          devnode.closeAnonFd(bad.fd());
        }
      }
    } else if (bad.opcode() == CachefilesMsg.OPCODE_READ) {
      CacheObject object = objects.get(bad.objectId());
      if (object != null && object.acquire()) {
        stats.reads.increment();
        finish(
            object,
            new CachefilesMsg.Read(bad.msgId(), bad.objectId(), 0, 0),
            new IOException(bad.reason()));
        return; // finish released the permit
      }
      answerOrphan(
          bad.msgId(), bad.objectId(), "malformed READ for unknown object " + bad.objectId());
      return;
    }
  }

  void addListener(BlobListener listener) {
    listeners.add(listener);
  }

  // ---- lifecycle
  // -----------------------------------------------------------------------------------------

  /** Objects currently open, for status. */
  List<CacheObject> objects() {
    return new ArrayList<>(objects.values());
  }

  /** Drops every object (daemon shutdown); fds close as in-flight work finishes. */
  void closeAll() {
    for (CacheObject o : new ArrayList<>(objects.values())) {
      objects.remove(o.objectId, o);
      o.markClosed();
    }
  }
}

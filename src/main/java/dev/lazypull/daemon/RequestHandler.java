package dev.lazypull.daemon;

import dev.lazypull.sys.OnceLogger;
import dev.lazypull.blob.BlobSource;
import dev.lazypull.cache.ChunkFetcher;
import dev.lazypull.cache.ChunkMap;
import dev.lazypull.cache.ChunkTables;
import dev.lazypull.cache.ReadAhead;
import dev.lazypull.cachefiles.CachefilesMsg;
import dev.lazypull.cachefiles.Devnode;
import dev.lazypull.cachefiles.DevnodeCommand;
import dev.lazypull.catalog.BlobBinding;
import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.sys.AlignedBuffers;
import dev.lazypull.sys.Errno;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Answers the kernel's OPEN, READ and CLOSE requests. The contract with the kernel: every OPEN gets exactly
 * one {@code copen}, every READ exactly one READ_COMPLETE — with the range present, or without data so the
 * reader gets EIO — and CLOSE releases the object's fds.
 *
 * <p>{@link #onRead} runs on the poll thread and does no blocking I/O: it queues fetches and attaches the
 * reply to their completion. OPEN and CLOSE are serialised on one object thread; {@code copen} is a devnode
 * write and the blob source may have to be opened.
 */
final class RequestHandler {
  private static final Logger LOG = Logger.getLogger(RequestHandler.class.getName());
  /** Larger READs are treated as malformed and failed (the kernel asks for at most a folio or a chunk). */
  static final long MAX_READ_LENGTH = 64L << 20;

  private final Devnode devnode;
  private final Catalog catalog;
  private final ImageSources sources;
  private final DaemonConfig config;
  private final DaemonStats stats;
  private final FetchPools fetchPools;
  /** Local work: readiness probes (and fetches from local layouts). */
  private final ExecutorService fetchPool;
  private final ThreadLocal<ByteBuffer> buffers;
  private final Map<Integer, CacheObject> objects = new ConcurrentHashMap<>();
  private final ChunkTables chunkTables = new ChunkTables();
  /** msg_id → arrival (nanoTime) of every READ not yet answered: in-flight and hung READs for metrics. */
  private final Map<Integer, Long> inflightReads = new ConcurrentHashMap<>();
  private final OnceLogger once = new OnceLogger(LOG);
  private final Runnable readDone;
  private final java.util.List<ObjectListener> listeners = new java.util.concurrent.CopyOnWriteArrayList<>();

  /**
   * Told when kernel objects open and close (on the object thread) and when READs arrive (on the poll thread:
   * must not block; also for the range read-ahead queues behind a READ). Used for cache LRU bookkeeping,
   * prefetch policies and access profiles.
   */
  interface ObjectListener {
    default void opened(CacheObject object) {}

    default void read(CacheObject object, long offset, long length) {}

    default void closed(CacheObject object) {}
  }

  /** @param readDone called once per READ when its reply has been sent (releases a poll-loop permit) */
  RequestHandler(Devnode devnode, Catalog catalog, ImageSources sources, DaemonConfig config, DaemonStats stats,
      FetchPools fetchPools, Runnable readDone) {
    this.devnode = devnode;
    this.catalog = catalog;
    this.sources = sources;
    this.config = config;
    this.stats = stats;
    this.fetchPools = fetchPools;
    this.fetchPool = fetchPools.forOrigin(FetchPools.CACHE_PROBES);
    this.readDone = readDone;
    this.buffers = ThreadLocal.withInitial(() -> AlignedBuffers.allocate(config.bufferSize()));
  }

  // ---- OPEN ----------------------------------------------------------------------------------------------

  void onOpen(CachefilesMsg.Open open) {
    stats.opens.increment();
    try {
      devnode.adoptAnonFd(open.fd());
    } catch (IOException e) {
      LOG.warning("OPEN " + open.msgId() + ": cannot set close-on-exec on fd " + open.fd() + ": " + e.getMessage());
    }
    Optional<BlobBinding> found = catalog.lookup(open.volumeKey(), open.cookieKey());
    if (found.isEmpty()) {
      refuse(open, Errno.ENOENT, "no registered image has volume '" + CachefilesMsg.printable(open.volumeKey())
          + "' and cookie '" + open.printableCookieKey() + "'");
      return;
    }
    BlobBinding binding = found.get();
    CacheObject existing = objects.get(open.objectId());
    if (existing != null && existing.addFd(open.fd())) {
      // Re-delivered OPEN (after restore): same object, one more fd. Answer with the same stable size.
      copen(open, binding.blob().size(), existing);
      return;
    }
    BlobSource source;
    try {
      source = sources.open(binding.image().reference()).blobs();
    } catch (IOException | RuntimeException e) {
      refuse(open, Errno.EIO, "cannot open the source of " + binding.image().reference() + ": " + e.getMessage());
      return;
    }
    // fetches block on their source: each origin has its own threads, so a stalled registry cannot delay others
    ExecutorService originPool = fetchPools.forReference(binding.image().reference());
    CacheObject object = new CacheObject(open.objectId(), open.volumeKey(), open.cookieKey(), binding, open.fd(),
        devnode, new ChunkMap(binding.blob().size(), config.chunkSize()),
        (self, map) -> new ChunkFetcher(binding.blob(), source, self, map, originPool, config.mergeLimit(),
            stats.fetch, buffers::get));
    dev.lazypull.image.Descriptor table = binding.image().chunkTable(binding.deviceId());
    if (table != null) {
      object.verifyWith(() -> chunkTables.get(table, binding.blob(), source, originPool));
    } else if (binding.isBootstrap()) {
      // metadata has no table: fetched and checked whole against its digest (a bad bootstrap is a bad filesystem)
      ChunkDigestTable whole = ChunkDigestTable.whole(binding.blob());
      if (whole != null) {
        object.verifyWith(() -> CompletableFuture.completedFuture(whole));
      } else {
        once.warn("bigboot:" + binding.blob().digest(), object + ": bootstrap over "
            + ChunkDigestTable.MAX_WHOLE_BYTES + " bytes: served unverified");
      }
    }
    objects.put(open.objectId(), object);
    if (copen(open, binding.blob().size(), object)) {
      object.ready(fetchPool);
      for (ObjectListener l : listeners) {
        l.opened(object);
      }
    }
    LOG.fine(() -> "OPEN " + object + " fsid " + binding.image().fsid() + " device " + binding.deviceId() + " size "
        + binding.blob().size());
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
    once.warn("refuse:" + why, "refusing OPEN " + open.msgId() + " (object " + open.objectId() + "): " + why);
    try {
      devnode.command(DevnodeCommand.copenError(open.msgId(), errno));
    } catch (IOException e) {
      stats.replyErrors.increment();
      LOG.warning("copen " + open.msgId() + ",-" + errno + " failed: " + e.getMessage());
    } finally {
      devnode.closeAnonFd(open.fd());
    }
  }

  // ---- CLOSE ---------------------------------------------------------------------------------------------

  void onClose(CachefilesMsg.Close close) {
    stats.closes.increment();
    CacheObject object = objects.remove(close.objectId());
    if (object == null) {
      LOG.fine(() -> "CLOSE for unknown object " + close.objectId());
      return;
    }
    object.markClosed();
    for (ObjectListener l : listeners) {
      l.closed(object);
    }
    LOG.fine(() -> "CLOSE " + object);
  }

  // ---- READ ----------------------------------------------------------------------------------------------

  /** Called on the poll thread. Exactly one reply is sent, now or when the fetch completes or times out. */
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
      once.warn("badread:" + object.objectId,
          object + ": failing READ of " + Long.toUnsignedString(length) + " bytes at " + Long.toUnsignedString(offset));
      finish(object, read, new IOException("invalid READ range"));
      return;
    }
    stats.readBytesRequested.add(length);
    notifyRead(object, offset, length);
    if (offset + length > object.fetcher().map().paddedSize()) {
      once.warn("pastend:" + object.objectId, object + ": READ " + offset + "+" + length + " goes past the blob's "
          + object.fetcher().map().blobSize() + " bytes; serving what exists");
    }
    CompletableFuture<Void> present;
    try {
      present = object.ensure(offset, length, fetchPool);
    } catch (RuntimeException e) {
      present = CompletableFuture.failedFuture(e);
    }
    if (config.readAhead() > 0) { // after the READ's own fetch is queued, before its reply can release the object
      ReadAhead.Range ahead = object.readAhead(offset, length, config.readAhead(), config.mergeLimit(), fetchPool);
      if (ahead != null) {
        // listeners see what this mount made present, not only what it asked for: a profile recorded from READs
        // alone misses the ranges read-ahead filled, and replaying it would leave those for READs again
        notifyRead(object, ahead.offset(), ahead.length());
      }
    }
    present.orTimeout(config.readDeadline().toMillis(), TimeUnit.MILLISECONDS)
        .whenComplete((v, error) -> finish(object, read, error));
  }

  /** Tells the listeners; on the READ's path before its reply is arranged, so nothing they throw may escape. */
  private void notifyRead(CacheObject object, long offset, long length) {
    for (ObjectListener l : listeners) {
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
        Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
        if (cause instanceof TimeoutException) {
          stats.readsTimedOut.increment();
          once.warn("timeout:" + object.objectId, object + ": READ " + read.offset() + "+" + read.length()
              + " not ready after " + config.readDeadline() + "; failing it with EIO");
        } else {
          stats.readsFailed.increment();
          once.warn("fail:" + object.objectId + ":" + cause.getMessage(), object + ": READ " + read.offset() + "+"
              + read.length() + " failed: " + cause);
        }
      }
      devnode.readComplete(object.fd(), read.msgId());
    } catch (IOException | RuntimeException e) {
      stats.replyErrors.increment();
      LOG.log(Level.WARNING, object + ": READ_COMPLETE " + read.msgId() + " failed: " + e.getMessage());
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
  java.util.Collection<Long> inflightReadStarts() {
    return inflightReads.values();
  }

  /**
   * A READ we cannot map to an object we hold. The reply must go through an fd of the READ's object, and
   * we have none: try every fd we hold — kernels before 6.10 accept any anon fd, newer ones reject the wrong
   * object with EINVAL — so the reader is released if it can be at all.
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
      LOG.severe("READ " + msgId + " of object " + objectId + " cannot be answered: no fd of that object is held");
    } finally {
      readDone.run();
    }
  }

  // ---- malformed -----------------------------------------------------------------------------------------

  void onMalformed(CachefilesMsg.Malformed bad) {
    stats.malformed.increment();
    once.warn("malformed:" + bad.opcode() + ":" + bad.reason(), "malformed cachefiles message (msg " + bad.msgId()
        + ", opcode " + bad.opcode() + ", object " + bad.objectId() + "): " + bad.reason());
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
        finish(object, new CachefilesMsg.Read(bad.msgId(), bad.objectId(), 0, 0), new IOException(bad.reason()));
        return; // finish released the permit
      }
      answerOrphan(bad.msgId(), bad.objectId(), "malformed READ for unknown object " + bad.objectId());
      return;
    }
  }

  void addListener(ObjectListener listener) {
    listeners.add(listener);
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------

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

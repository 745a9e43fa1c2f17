package dev.lazypull.fscache;

import dev.lazypull.catalog.BlobBinding;
import dev.lazypull.fetch.ChunkFetcher;
import dev.lazypull.fetch.ChunkSink;
import dev.lazypull.frontend.ServedBlob;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;

/**
 * One kernel cachefiles object (a cookie's backing file) that the daemon has opened: its anon
 * fd(s), the blob it serves, and the fetcher that fills the backing file. The object is the
 * fetcher's {@link ChunkSink}: bytes are written, and extents probed, through its anon fd.
 *
 * <p>Anon fds are reference-counted: CLOSE drops the table's reference, and the fds are closed only
 * when the last READ or fetch using them is done. A descriptor number is never closed while another
 * thread may still write through it — after close(2) the number can be reused for an unrelated
 * file.
 */
final class CacheObject implements ServedBlob, ChunkSink {
  /**
   * How long a probe waits for the kernel to attach the backing file after copen (it answers
   * ENOBUFS until then).
   */
  private static final int ATTACH_ATTEMPTS = 100;

  final int objectId;
  final String volumeKey;
  final String cookieKey;
  private final BlobBinding binding;
  private final Devnode devnode;
  private final List<Integer> fds = new ArrayList<>();
  private int refs = 1;
  private boolean closed;

  /** Builds this object's fetcher through the fetch core; set when copen succeeded. */
  private Function<CacheObject, CompletableFuture<ChunkFetcher>> opener;

  private CompletableFuture<ChunkFetcher> fetcher = new CompletableFuture<>();

  CacheObject(
      int objectId,
      String volumeKey,
      String cookieKey,
      BlobBinding binding,
      int fd,
      Devnode devnode) {
    this.objectId = objectId;
    this.volumeKey = volumeKey;
    this.cookieKey = cookieKey;
    this.binding = binding;
    this.devnode = devnode;
    this.fds.add(fd);
  }

  @Override
  public String id() {
    return "object " + objectId;
  }

  @Override
  public BlobBinding binding() {
    return binding;
  }

  /**
   * Builds the fetcher, right after copen: the kernel attaches the backing file only once copen
   * returns, and the fetch core probes what it holds through the anon fd.
   */
  synchronized void start(Function<CacheObject, CompletableFuture<ChunkFetcher>> opener) {
    this.opener = opener;
    CompletableFuture<ChunkFetcher> target = fetcher;
    opener
        .apply(this)
        .whenComplete(
            (f, e) -> {
              if (e != null) {
                target.completeExceptionally(e);
              } else {
                target.complete(f);
              }
            });
  }

  /**
   * The fetcher, once ready. A setup that failed (the digest table could not be loaded) failed the
   * requests waiting for it; the next caller tries again, so the object recovers once its source is
   * back.
   */
  @Override
  public synchronized CompletableFuture<ChunkFetcher> fetcher() {
    if (fetcher.isCompletedExceptionally() && opener != null && !closed) {
      fetcher = opener.apply(this);
    }
    return fetcher;
  }

  /** Takes a reference for a READ or fetch; false once the object is closed. */
  synchronized boolean acquire() {
    if (closed) {
      return false;
    }
    refs++;
    return true;
  }

  void release() {
    List<Integer> toClose = null;
    synchronized (this) {
      if (--refs == 0) {
        toClose = new ArrayList<>(fds);
        fds.clear();
      }
    }
    if (toClose != null) {
      for (int fd : toClose) {
        devnode.closeAnonFd(fd);
      }
    }
  }

  /**
   * CLOSE from the kernel (or daemon shutdown): no new users; fds go when the last user releases.
   */
  void markClosed() {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
    }
    release();
  }

  @Override
  public synchronized boolean isClosed() {
    return closed;
  }

  @Override
  public boolean isOpen() {
    return !isClosed();
  }

  /** Another fd for the same object (an OPEN re-delivered after {@code restore}). */
  synchronized boolean addFd(int fd) {
    if (closed) {
      return false;
    }
    fds.add(fd);
    return true;
  }

  /** The fd used for writes and replies. Callers hold a reference. */
  synchronized int fd() {
    if (fds.isEmpty()) {
      throw new IllegalStateException("object " + objectId + " has no open fd");
    }
    return fds.get(0);
  }

  /**
   * {@link ChunkSink}: writes through the anon fd (direct I/O: aligned buffer, offset and length).
   */
  @Override
  public void write(ByteBuffer buf, long offset) throws IOException {
    if (!acquire()) {
      throw new IOException("object " + objectId + " was closed by the kernel");
    }
    try {
      int want = buf.remaining();
      long n = devnode.pwrite(fd(), buf, offset);
      if (n < want) { // the anon fd reports >= the request on every kernel; less means trouble
        throw new IOException(
            "short write to object " + objectId + " at " + offset + ": " + n + " of " + want);
      }
    } finally {
      release();
    }
  }

  @Override
  public long seekData(long offset) throws IOException {
    return seek(offset, true);
  }

  @Override
  public long seekHole(long offset) throws IOException {
    return seek(offset, false);
  }

  /**
   * SEEK_DATA/SEEK_HOLE on the anon fd, waiting briefly for the kernel to attach the backing file.
   */
  private long seek(long offset, boolean data) throws IOException {
    if (!acquire()) {
      throw new IOException("object " + objectId + " was closed by the kernel");
    }
    try {
      for (int attempt = 0; ; attempt++) {
        try {
          return data ? devnode.seekData(fd(), offset) : devnode.seekHole(fd(), offset);
        } catch (ErrnoException e) {
          if (e.errno() != Errno.ENOBUFS || attempt >= ATTACH_ATTEMPTS || isClosed()) {
            throw e;
          }
          Thread.sleep(
              5); // the kernel attaches the file right after copen; it signals nothing when it has
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("object " + objectId + ": interrupted while probing");
    } finally {
      release();
    }
  }

  @Override
  public String toString() {
    return "object "
        + objectId
        + " ["
        + volumeKey
        + " / "
        + binding.blob().digest().shortHex()
        + "]";
  }
}

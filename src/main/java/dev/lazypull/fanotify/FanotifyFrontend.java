package dev.lazypull.fanotify;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.catalog.BlobBinding;
import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.fetch.BlobCacheDir;
import dev.lazypull.fetch.BlobCacheFile;
import dev.lazypull.fetch.BlobRef;
import dev.lazypull.fetch.ChunkFetcher;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.fetch.ReadAhead;
import dev.lazypull.frontend.BlobListener;
import dev.lazypull.frontend.Frontend;
import dev.lazypull.frontend.RequestStats;
import dev.lazypull.frontend.ServedBlob;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.MountInfo;
import dev.lazypull.sys.Mounts;
import dev.lazypull.sys.OnceLogger;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The fanotify front end: images are mounted as EROFS file-backed mounts ({@code mount(2)} on the
 * bootstrap file, {@code device=} the data blobs' host cache files), and the data files carry this
 * group's pre-content mark while parts of them are missing. Every read of a missing page raises
 * {@code FAN_PRE_ACCESS} with its range; the event is answered ALLOW once the range is fetched,
 * verified and written into the file — at once when the chunk map says it is present — and denied
 * with EIO when it cannot be (never allowed over a hole: that would read zeros).
 *
 * <p>One event thread reads and decodes events and dispatches them without blocking I/O: it looks
 * the file up by the event fd's identity, answers present ranges itself, and hands the rest to the
 * fetch core, whose completion answers. Writes this process makes to a marked file raise events of
 * their own, answered at once (they are the fill). A write by another lazypull process that holds
 * the range's claim is let through too ({@link CacheWriters}); a reader of a range another process
 * is fetching waits for that fetch like any other.
 *
 * <p>Images are prepared ({@link #prepare}) before they are mounted: the bootstrap fetched whole
 * and verified, the data files opened and marked. A complete file is unmarked. Prepared images are
 * remembered in the state directory so a restarted daemon serves the mounts its predecessor left;
 * with the group fd kept alive across the restart (systemd's fd store, or the keeper), the events
 * the predecessor read but never answered are denied (EIO) before the first new event is read, so
 * no answer can go to the wrong event.
 */
public final class FanotifyFrontend implements Frontend {
  private static final Logger LOG = Logger.getLogger(FanotifyFrontend.class.getName());
  private static final int POLL_TIMEOUT_MS = 250;

  /** What a bootstrap, a digest table and a readiness probe may take before prepare gives up. */
  private static final Duration PREPARE_TIMEOUT = Duration.ofMinutes(2);

  /** What a mount needs: the bootstrap file and the data files in device order. */
  public record Prepared(ImageRecord image, Path bootstrap, List<Path> devices) {}

  private final FanotifyGroup group;
  private final Catalog catalog;
  private final ImageSources sources;
  private final FetchCore core;
  private final BlobCacheDir cache;
  private final PreparedImages state;
  private final Duration readTimeout;
  private final int denyResponse;
  private final int ownPid = (int) ProcessHandle.current().pid();
  private final RequestStats stats = new RequestStats();
  private final OnceLogger once = new OnceLogger(LOG);
  private final List<BlobListener> listeners = new CopyOnWriteArrayList<>();

  /** Watched files by identity: how an event (which names its file by fd only) finds its file. */
  private final Map<FileKey, WatchedFile> watched = new ConcurrentHashMap<>();

  /** Prepared images by fsid, with their bootstrap file and their devices' views. */
  private final Map<String, Image> images = new LinkedHashMap<>();

  /**
   * Events being served: event fd → arrival (nanoTime), for metrics and the answer-once guarantee.
   */
  private final Map<Integer, Inflight> inflight = new ConcurrentHashMap<>();

  private final Thread eventThread;
  private volatile boolean running;
  private volatile Throwable failure;

  private record Image(
      ImageRecord record, BlobCacheFile bootstrap, List<WatchedFile.Served> blobs, MountsDue due) {}

  /**
   * Mounts announced and not yet made: each prepare is a client about to call mount(2) with what it
   * got, and until it says it did ({@link #mountSettled}) — or {@link #releaseUnmounted}'s grace
   * passes, for a client that died or never says — the image must stay served even when nothing
   * mounts it yet. Guarded by {@code images}.
   */
  private static final class MountsDue {
    int count;
    long lastPrepareNanos;

    void prepared() {
      count++;
      lastPrepareNanos = System.nanoTime();
    }
  }

  /** One event waiting for its range: answered exactly once, by the fetch or by shutdown. */
  private static final class Inflight {
    final int fd;
    final long startNanos;
    final AtomicBoolean answered = new AtomicBoolean();

    Inflight(int fd, long startNanos) {
      this.fd = fd;
      this.startNanos = startNanos;
    }
  }

  /**
   * @param group the pre-content group; when it was handed over from a predecessor ({@code
   *     adopted}), events that predecessor read and never answered are denied before any new one is
   *     read
   * @param stateDir where prepared images and the highest event fd number are remembered
   * @param denyErrno whether the kernel takes {@code FAN_DENY_ERRNO} (else a plain deny: EPERM)
   */
  public FanotifyFrontend(
      FanotifyGroup group,
      Catalog catalog,
      ImageSources sources,
      FetchCore core,
      BlobCacheDir cache,
      Path stateDir,
      boolean denyErrno) {
    this.group = group;
    this.catalog = catalog;
    this.sources = sources;
    this.core = core;
    this.cache = cache;
    this.state = new PreparedImages(stateDir);
    this.readTimeout = core.settings().readTimeout();
    this.denyResponse = denyErrno ? FanotifyResponse.denyErrno(Errno.EIO) : FanotifyResponse.DENY;
    this.eventThread = new Thread(this::eventLoop, "lazypull-fanotify-events");
    this.eventThread.setDaemon(true);
  }

  @Override
  public String name() {
    return "fanotify";
  }

  /**
   * Serves again what the predecessor prepared (its mounts may still be live), sweeps the events it
   * read and never answered when the group was handed over, and starts reading events.
   */
  public void start(boolean adopted) {
    for (String fsid : state.load()) {
      try {
        prepare(fsid);
      } catch (IOException | RuntimeException e) {
        LOG.warning(
            "image "
                + fsid
                + " was prepared before the restart and cannot be served again: "
                + e.getMessage()
                + "; its mounts' reads of missing data fail with EIO");
      }
    }
    if (adopted) {
      // every number the predecessor could have been handed: below its capped fd limit, and (should
      // a predecessor
      // have run without the cap) up to the highest it recorded
      int bound = Math.max(EventFdLimit.MAX, state.highestEventFd() + 1);
      long t0 = System.nanoTime();
      try {
        int n = group.answerWaiting(0, bound, denyResponse, fd -> false);
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        if (n > 0) {
          LOG.warning(
              "denied (EIO) "
                  + n
                  + " access(es) the previous daemon read and never answered (swept fd "
                  + "numbers 0-"
                  + (bound - 1)
                  + " in "
                  + ms
                  + " ms)");
        } else {
          LOG.info(
              "no access the previous daemon read was left unanswered (swept fd numbers 0-"
                  + (bound - 1)
                  + " in "
                  + ms
                  + " ms)");
        }
      } catch (IOException e) {
        LOG.severe("sweeping the previous daemon's unanswered events failed: " + e.getMessage());
      }
    }
    start();
  }

  @Override
  public void start() {
    running = true;
    eventThread.start();
  }

  @Override
  public boolean isRunning() {
    return running && eventThread.isAlive();
  }

  @Override
  public Throwable failure() {
    return failure;
  }

  @Override
  public void awaitTermination() throws InterruptedException {
    eventThread.join();
  }

  @Override
  public RequestStats stats() {
    return stats;
  }

  @Override
  public List<ServedBlob> served() {
    List<ServedBlob> out = new ArrayList<>();
    synchronized (images) {
      for (Image i : images.values()) {
        out.addAll(i.blobs());
      }
    }
    return out;
  }

  @Override
  public long[] inflightRequests(Duration hungAfter) {
    long now = System.nanoTime();
    long total = 0;
    long hung = 0;
    for (Inflight i : inflight.values()) {
      total++;
      if (now - i.startNanos > hungAfter.toNanos()) {
        hung++;
      }
    }
    return new long[] {total, hung};
  }

  @Override
  public void addListener(BlobListener listener) {
    listeners.add(listener);
  }

  /** The fsids of the images prepared for mounting. */
  public List<String> preparedImages() {
    synchronized (images) {
      return List.copyOf(images.keySet());
    }
  }

  // ---- prepare / release
  // -----------------------------------------------------------------------------------

  /**
   * Gets a registered image ready to be mounted: its bootstrap fetched whole and verified into the
   * host cache, its data files opened (digest tables loaded) and marked unless complete. Blocks
   * (the control thread). Preparing a prepared image returns the same files.
   *
   * @throws IOException if the image is unknown or its bootstrap, tables or files cannot be had
   */
  public Prepared prepare(String fsid) throws IOException {
    ImageRecord r =
        catalog.get(fsid).orElseThrow(() -> new IOException("no registered image " + fsid));
    synchronized (images) {
      Image known = images.get(fsid);
      if (known != null) {
        known.due().prepared();
        return prepared(known);
      }
    }
    BlobSource source = sources.open(r.reference()).blobs();
    List<BlobCacheFile> opened = new ArrayList<>();
    List<WatchedFile.Served> blobs = new ArrayList<>();
    try {
      BlobCacheFile boot = cache.file(BlobRef.metadata(r.bootstrap(), r.reference()), source);
      opened.add(boot);
      await(boot.fetcher(), "the bootstrap of " + fsid);
      await(
          boot.ensure(0, boot.size()),
          "the bootstrap of " + fsid); // whole, verified: the kernel reads it
      for (int i = 0; i < r.blobs().size(); i++) {
        BlobCacheFile f =
            cache.file(BlobRef.data(r.blobs().get(i), r.chunkTable(i + 1), r.reference()), source);
        opened.add(f);
        await(f.fetcher(), "blob " + r.blobs().get(i).digest() + " of " + fsid);
        blobs.add(watch(f, new BlobBinding(r, r.blobs().get(i), i + 1)));
      }
      MountsDue due = new MountsDue();
      due.prepared();
      Image image = new Image(r, boot, blobs, due);
      synchronized (images) {
        Image raced = images.get(fsid);
        if (raced != null) { // prepared meanwhile by another client: serve that one
          raced.due().prepared();
          blobs.forEach(this::unwatch);
          opened.forEach(cache::release);
          return prepared(raced);
        }
        images.put(fsid, image);
        state.save(images.keySet());
      }
      for (WatchedFile.Served s : blobs) {
        for (BlobListener l : listeners) {
          l.opened(s);
        }
      }
      LOG.info("prepared " + fsid + " (" + r.reference() + "): " + blobs.size() + " data file(s)");
      return prepared(image);
    } catch (IOException | RuntimeException e) {
      blobs.forEach(this::unwatch);
      opened.forEach(cache::release);
      throw e;
    }
  }

  private static Prepared prepared(Image i) {
    return new Prepared(
        i.record(),
        i.bootstrap().path(),
        i.blobs().stream().map(b -> b.watched.file.path()).toList());
  }

  /**
   * Marks {@code f} unless it is complete, indexes it by identity for events, and adds {@code
   * binding}'s view of it — all under one lock, so a release of another image sharing the file
   * never unwatches it in between.
   */
  private WatchedFile.Served watch(BlobCacheFile f, BlobBinding binding) throws IOException {
    FileKey key = FileKey.of(f.path());
    synchronized (watched) {
      WatchedFile w = watched.get(key);
      boolean added = w == null;
      if (added) {
        w = new WatchedFile(f, key);
        watched.put(key, w);
      }
      if (!w.marked && !w.complete()) {
        try {
          group.mark(f.path());
        } catch (IOException | RuntimeException e) {
          if (added) {
            watched.remove(key);
          }
          throw e;
        }
        w.marked = true;
      } else if (added && !w.marked) {
        // complete: no mark needed, and none may stay — a predecessor whose group we adopted may
        // have left one,
        // which would send every access of a file we might stop watching to a daemon that denies it
        try {
          group.unmark(f.path());
        } catch (IOException e) {
          // ENOENT: it had none
        }
      }
      WatchedFile.Served s = new WatchedFile.Served(w, binding);
      w.served.add(s);
      return s;
    }
  }

  /**
   * Drops one view of a watched file; the last one takes the file out of the index and removes its
   * mark.
   */
  private void unwatch(WatchedFile.Served s) {
    WatchedFile w = s.watched;
    synchronized (watched) {
      w.served.remove(s);
      if (w.served.isEmpty() && watched.get(w.key) == w) {
        watched.remove(w.key);
        unmark(w);
      }
    }
  }

  /**
   * Stops serving an image that is no longer mounted: its files' users drop, a file nobody uses any
   * more loses its mark and goes back to the cache (the collector may then remove it). Only for
   * images whose mounts are gone: a live mount of a released image would read holes unwatched.
   */
  public void release(String fsid) {
    Image image;
    synchronized (images) {
      image = images.remove(fsid);
      if (image == null) {
        return;
      }
      state.save(images.keySet());
    }
    for (WatchedFile.Served s : image.blobs()) {
      s.close();
      for (BlobListener l : listeners) {
        l.closed(s);
      }
      unwatch(s);
      cache.release(s.watched.file);
    }
    cache.release(image.bootstrap());
    LOG.info("released " + fsid);
  }

  /**
   * A client that prepared {@code fsid} has made its mount (or failed to): the image no longer
   * waits for it. Unknown images are ignored.
   */
  public void mountSettled(String fsid) {
    synchronized (images) {
      Image i = images.get(fsid);
      if (i != null && i.due().count > 0) {
        i.due().count--;
      }
    }
  }

  /**
   * Releases prepared images no mount uses any more (unmounted by `lazypull umount`, systemd, or
   * plain umount): at once when no client that prepared one still has its mount to make, else once
   * {@code grace} has passed since the last prepare (a mount follows its prepare within moments; a
   * client that never says it mounted is given that long).
   *
   * @return the fsids released
   */
  public List<String> releaseUnmounted(Duration grace) throws IOException {
    List<String> gone = new ArrayList<>();
    synchronized (
        images) { // under the lock: a prepare cannot slip in between the check and the removal
      Set<Path> mounted = mountedBootstraps();
      for (Image i : images.values()) {
        if (!mounted.contains(i.bootstrap().path())
            && (i.due().count == 0
                || System.nanoTime() - i.due().lastPrepareNanos >= grace.toNanos())) {
          gone.add(i.record().fsid());
        }
      }
      gone.forEach(this::release);
    }
    unmarkComplete();
    return gone;
  }

  /**
   * Unmarks files that became complete without an event to notice it (read-ahead or prefetch filled
   * their last chunks after the last access): later reads of them raise no event at all.
   */
  public void unmarkComplete() {
    for (WatchedFile w : watched.values()) {
      if (w.marked && w.complete()) {
        unmark(w);
      }
    }
  }

  /**
   * Bootstrap files that EROFS file-backed mounts have as their source, in this mount namespace and
   * in every other one a process lives in: `lazypull mount` mounts in its caller's namespace (a
   * container's, a service's private one), and releasing an image mounted there would leave that
   * mount reading holes unwatched.
   */
  private static Set<Path> mountedBootstraps() throws IOException {
    Set<Path> out = new HashSet<>();
    for (MountInfo.Mount m : mountsInEveryNamespace()) {
      if (m.fsType().equals("erofs") && m.source().startsWith("/")) {
        out.add(Path.of(m.source()));
      }
    }
    return out;
  }

  /**
   * The mounts of this namespace (its failure is an error) and of every other namespace a process
   * is in.
   */
  static List<MountInfo.Mount> mountsInEveryNamespace() throws IOException {
    List<MountInfo.Mount> out = new ArrayList<>(MountInfo.read());
    Set<String> seen = new HashSet<>();
    try {
      seen.add(Files.readSymbolicLink(Path.of("/proc/self/ns/mnt")).toString());
    } catch (IOException e) {
      return out; // no namespaces to tell apart
    }
    try (DirectoryStream<Path> procs =
        Files.newDirectoryStream(
            Path.of("/proc"),
            p -> p.getFileName().toString().chars().allMatch(Character::isDigit))) {
      for (Path proc : procs) {
        try {
          if (seen.add(Files.readSymbolicLink(proc.resolve("ns/mnt")).toString())) {
            out.addAll(
                MountInfo.parse(
                    Files.readString(proc.resolve("mountinfo"), StandardCharsets.UTF_8)));
          }
        } catch (IOException e) {
          // gone meanwhile, or not ours to look at
        }
      }
    }
    return out;
  }

  /**
   * Unmounts every mount of a prepared image (a clean stop: a mount left without its daemon would
   * read holes once the group is gone). A busy mount is left mounted, not detached: a detached
   * mount stays readable through the files open on it while nothing lists it any more — a successor
   * could not tell it is live and would release its image, and its holes would read as zeros once
   * the group went. The caller keeps the group alive for busy mounts, so their reads wait for the
   * next daemon. Mounts in other mount namespaces (made by `lazypull mount` in a container) are not
   * this process's to unmount: they are reported as left too.
   *
   * @return what is still mounted: busy mount points, and images mounted in other namespaces
   */
  public List<String> unmountAll() {
    Set<Path> ours = new HashSet<>();
    synchronized (images) {
      images.values().forEach(i -> ours.add(i.bootstrap().path()));
    }
    List<MountInfo.Mount> mounts;
    try {
      mounts = MountInfo.read();
    } catch (IOException e) {
      LOG.warning("cannot list mounts to unmount before stopping: " + e.getMessage());
      return List.of("(mounts unknown: " + e.getMessage() + ")");
    }
    // (a busy mount found again below in the all-namespace scan is reported once, by its mount
    // point)
    List<String> left = new ArrayList<>();
    Set<Path> busy = new HashSet<>();
    for (int i = mounts.size() - 1; i >= 0; i--) { // newest first
      MountInfo.Mount m = mounts.get(i);
      if (!m.fsType().equals("erofs") || !ours.contains(Path.of(m.source()))) {
        continue;
      }
      try {
        Mounts.umount(m.mountPoint(), 0);
        LOG.info("unmounted " + m.mountPoint());
      } catch (ErrnoException e) {
        left.add(m.mountPoint());
        busy.add(Path.of(m.source()));
        LOG.warning("cannot unmount " + m.mountPoint() + " before stopping: " + e.getMessage());
      }
    }
    try { // mounts in other namespaces (containers, private service namespaces) are not ours to
      // unmount
      Set<Path> elsewhere = mountedBootstraps();
      synchronized (images) {
        for (Image i : images.values()) {
          if (elsewhere.contains(i.bootstrap().path()) && !busy.contains(i.bootstrap().path())) {
            left.add(i.record().fsid() + " (mounted in another mount namespace)");
          }
        }
      }
    } catch (IOException e) {
      left.add("(mounts unknown: " + e.getMessage() + ")");
    }
    return left;
  }

  private void unmark(WatchedFile w) {
    synchronized (watched) {
      if (!w.marked) {
        return;
      }
      w.marked = false;
    }
    try {
      group.unmark(w.file.path());
    } catch (IOException e) {
      LOG.fine(() -> "unmarking " + w.file.path() + ": " + e.getMessage());
    }
  }

  private static <T> T await(CompletableFuture<T> f, String what) throws IOException {
    try {
      return f.get(PREPARE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      Throwable c = e.getCause() != null ? e.getCause() : e;
      throw new IOException("fetching " + what + ": " + c.getMessage(), c);
    } catch (TimeoutException e) {
      throw new IOException("fetching " + what + " took longer than " + PREPARE_TIMEOUT);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while fetching " + what);
    }
  }

  // ---- events
  // ----------------------------------------------------------------------------------------------

  private void eventLoop() {
    ByteBuffer buf = ByteBuffer.allocateDirect(FanotifyDecoder.READ_BUFFER_SIZE);
    int errors = 0;
    while (running) {
      try {
        if (!group.awaitEvents(POLL_TIMEOUT_MS)) {
          continue;
        }
        List<FanotifyMessage> batch = group.readBatch(buf);
        long arrived = System.nanoTime();
        for (FanotifyMessage m : batch) {
          dispatch(m, arrived);
        }
        errors = 0;
      } catch (IOException | RuntimeException e) {
        if (++errors > 100) {
          failure = e;
          running = false;
          LOG.severe("fanotify group failed, front end stopping: " + e.getMessage());
          return;
        }
        LOG.log(Level.WARNING, "fanotify event loop: " + e, e);
      }
    }
  }

  private void dispatch(FanotifyMessage m, long arrived) {
    if (m.fd() >= 0) {
      state.sawEventFd(m.fd());
    }
    if (m instanceof FanotifyMessage.Malformed bad) {
      stats.malformed.increment();
      once.warn("malformed:" + bad.reason(), "malformed fanotify event: " + bad.reason());
      if (bad.fd() >= 0) {
        answerNow(bad.fd(), denyResponse);
      }
      return;
    }
    FanotifyMessage.Event e = (FanotifyMessage.Event) m;
    if (e.fd() < 0) {
      if (e.isOverflow()) { // with an unlimited queue this cannot happen; if it does, accesses went
        // unseen
        LOG.severe("fanotify queue overflow: accesses may have passed without being filled");
      }
      return;
    }
    if (!e.isPermission()) {
      group.closeEventFd(e.fd());
      return;
    }
    onAccess(e, arrived);
  }

  /**
   * A pre-content event: answer at once when nothing is missing, else when the fetch is done. The
   * read latency counts from {@code arrived} (when its batch was read) to the answer, for both.
   */
  private void onAccess(FanotifyMessage.Event e, long arrived) {
    if (e.pid() == ownPid) { // our own fill of the file (or our own read of what we made present)
      answerNow(e.fd(), FanotifyResponse.ALLOW);
      return;
    }
    stats.reads.increment();
    WatchedFile w = lookup(e.fd());
    if (w == null) { // a mark of a file we do not serve (an image that could not be prepared again)
      stats.readsOrphaned.increment();
      once.warn("unknown", "access to a marked file this daemon does not serve: denied (EIO)");
      answerNow(e.fd(), denyResponse);
      return;
    }
    long size = w.file.size();
    long offset = e.hasRange() ? Math.min(e.offset(), size) : 0;
    long end = e.hasRange() ? Math.min(e.end(), size) : size;
    long length = end - offset;
    ChunkFetcher fetcher = w.fetcherNow();
    if (length <= 0 || (fetcher != null && fetcher.isPresent(offset, length))) {
      stats.readsOk.increment();
      answerNow(e.fd(), FanotifyResponse.ALLOW);
      stats.readLatency.observeNanos(System.nanoTime() - arrived);
      return;
    }
    stats.readBytesRequested.add(length);
    Inflight req = new Inflight(e.fd(), arrived);
    inflight.put(e.fd(), req);
    notifyRead(w, offset, length);
    CompletableFuture<Void> present;
    try {
      present =
          w.file.claims().claimedElsewhere(offset, length)
              // another process is fetching part of it: its own write is let through (it waits for
              // this answer
              // while holding the claim); anyone else waits for the bytes
              ? CompletableFuture.supplyAsync(
                      () -> CacheWriters.hasOpen(e.pid(), w.file.claimsPath()), core.probePool())
                  .thenCompose(
                      writer ->
                          writer
                              ? CompletableFuture.completedFuture(null)
                              : ensure(w, offset, length))
              : ensure(w, offset, length);
    } catch (IOException | RuntimeException ex) {
      present = CompletableFuture.failedFuture(ex);
    }
    if (fetcher != null) {
      ReadAhead.Range ahead = fetcher.readAhead(offset, length);
      if (ahead != null) {
        notifyRead(w, ahead.offset(), ahead.length());
      }
    }
    present
        .orTimeout(readTimeout.toMillis(), TimeUnit.MILLISECONDS)
        .whenComplete((v, error) -> finish(req, w, offset, length, error));
  }

  /** The watched file an event's fd is open on, or null. */
  private WatchedFile lookup(int eventFd) {
    try {
      return watched.get(group.identify(eventFd));
    } catch (IOException e) {
      return null;
    }
  }

  private CompletableFuture<Void> ensure(WatchedFile w, long offset, long length) {
    return w.file.ensure(offset, length);
  }

  private void notifyRead(WatchedFile w, long offset, long length) {
    for (WatchedFile.Served s : w.served) {
      for (BlobListener l : listeners) {
        try {
          l.read(s, offset, length);
        } catch (RuntimeException ex) {
          once.warn("listener:" + l.getClass().getName(), "listener " + l + " failed: " + ex);
        }
      }
    }
  }

  private void finish(Inflight req, WatchedFile w, long offset, long length, Throwable error) {
    if (!req.answered.compareAndSet(false, true)) {
      return; // shutdown answered it
    }
    inflight.remove(req.fd);
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
            "timeout:" + w.key,
            w.file.path()
                + ": "
                + offset
                + "+"
                + length
                + " not ready after "
                + readTimeout
                + "; failing the read with EIO");
      } else {
        stats.readsFailed.increment();
        once.warn(
            "fail:" + w.key + ":" + cause.getMessage(),
            w.file.path()
                + ": "
                + offset
                + "+"
                + length
                + " failed: "
                + cause.getMessage()
                + "; the read gets EIO");
      }
    }
    answerNow(req.fd, error == null ? FanotifyResponse.ALLOW : denyResponse);
    stats.readLatency.observeNanos(System.nanoTime() - req.startNanos);
    if (error == null && w.marked && w.complete()) {
      unmark(w); // every byte is present: later reads raise no event at all
    }
  }

  /** Answers an event and closes its fd. */
  private void answerNow(int fd, int response) {
    try {
      group.finish(fd, response);
    } catch (IOException e) {
      stats.replyErrors.increment();
      LOG.warning(
          "answering fanotify event fd "
              + fd
              + " ("
              + FanotifyResponse.describe(response)
              + "): "
              + e.getMessage());
    }
  }

  // ---- shutdown
  // --------------------------------------------------------------------------------------------

  /**
   * Stops reading events, denies (EIO) what is in flight and what is still queued, and closes this
   * process's group descriptor. Marks stay: with the descriptor kept elsewhere (fd store, keeper) a
   * successor serves the mounts; without, the kernel drops the group — callers unmount first
   * ({@link #preparedImages}).
   */
  @Override
  public void close() {
    running = false;
    try {
      eventThread.join(2000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    for (Inflight req : new ArrayList<>(inflight.values())) {
      if (req.answered.compareAndSet(false, true)) {
        inflight.remove(req.fd);
        stats.readsFailed.increment();
        answerNow(req.fd, denyResponse);
      }
    }
    denyQueued();
    Map<String, Image> all;
    synchronized (images) {
      all = new HashMap<>(images);
    }
    for (Image i : all.values()) {
      i.blobs().forEach(WatchedFile.Served::close);
    }
    group.close();
  }

  /** Reads and denies every event still queued (nobody will serve them). */
  private void denyQueued() {
    ByteBuffer buf = ByteBuffer.allocateDirect(FanotifyDecoder.READ_BUFFER_SIZE);
    try {
      List<FanotifyMessage> batch;
      while (!(batch = group.readBatch(buf)).isEmpty()) {
        for (FanotifyMessage m : batch) {
          if (m.fd() < 0) {
            continue;
          }
          if (m instanceof FanotifyMessage.Event e && !e.isPermission()) {
            group.closeEventFd(e.fd());
          } else {
            answerNow(m.fd(), denyResponse);
          }
        }
      }
    } catch (IOException e) {
      LOG.warning("denying queued fanotify events at shutdown: " + e.getMessage());
    }
  }
}

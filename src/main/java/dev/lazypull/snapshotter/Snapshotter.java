package dev.lazypull.snapshotter;

import dev.lazypull.snapshotter.MetaStore.Entry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import java.util.logging.Logger;
import java.util.stream.Stream;

/**
 * The snapshots API with containerd's semantics (its {@code snapshots/storage} and overlayfs
 * snapshotter): active snapshots are overlayfs upper and work directories over their committed
 * parents, views are read-only, committed snapshots are immutable parents; a key is unique across
 * kinds; a parent must exist and be committed; a snapshot with children cannot be removed; labels
 * are replaced on Commit and updated by field path.
 *
 * <p>Layout under the root: {@code metadata.json} ({@link MetaStore}), {@code snapshots/ID/fs} (the
 * upper directory, or — for a lazy image layer — the mount point of its EROFS mount) and {@code
 * snapshots/ID/work}. A Prepare carrying containerd's remote-snapshot labels for a layer of a
 * lazypull image commits that layer at once under the label's target name and answers
 * ALREADY_EXISTS, as containerd's unpacker expects ({@link RemoteLayers}); every other Prepare
 * makes an ordinary snapshot that containerd unpacks into.
 *
 * <p>Metadata changes are serialized by this object's monitor; mounting a lazy image (which waits
 * for the daemon to fetch its bootstrap) happens outside it.
 */
public final class Snapshotter implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Snapshotter.class.getName());

  private final Path root;
  private final Path snapshotsDir;
  private final MetaStore store;
  private final RemoteLayers remote;
  private final FileChannel lockFile;
  private final FileLock lock;

  /** Per lazy image snapshot id: serializes its (re)mounts. */
  private final Map<Long, Object> mountLocks = new HashMap<>();

  /**
   * Ids of lazy layers being mounted for a Prepare, not yet recorded (Cleanup leaves their
   * directories).
   */
  private final Set<Long> pending = new HashSet<>();

  private Snapshotter(
      Path root, MetaStore store, RemoteLayers remote, FileChannel lockFile, FileLock lock) {
    this.root = root;
    this.snapshotsDir = root.resolve("snapshots");
    this.store = store;
    this.remote = remote;
    this.lockFile = lockFile;
    this.lock = lock;
  }

  /**
   * Opens the snapshotter over {@code root} (created if needed), which no other process may be
   * using.
   *
   * @throws IOException if the root cannot be locked or its metadata read
   */
  public static Snapshotter open(Path root, RemoteLayers remote) throws IOException {
    Files.createDirectories(root.resolve("snapshots"));
    FileChannel ch =
        FileChannel.open(root.resolve("lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
    FileLock l;
    try {
      l = ch.tryLock();
    } catch (IOException e) {
      ch.close();
      throw e;
    }
    if (l == null) {
      ch.close();
      throw new IOException(root + " is in use by another lazypull snapshotter");
    }
    try {
      return new Snapshotter(root, MetaStore.load(root.resolve("metadata.json")), remote, ch, l);
    } catch (IOException | RuntimeException e) {
      l.release();
      ch.close();
      throw e;
    }
  }

  public Path root() {
    return root;
  }

  Path fsPath(long id) {
    return snapshotsDir.resolve(Long.toString(id)).resolve("fs");
  }

  Path workPath(long id) {
    return snapshotsDir.resolve(Long.toString(id)).resolve("work");
  }

  // ---- create
  // -------------------------------------------------------------------------------------------------

  /** An active snapshot {@code key} over {@code parent}: its mounts are writable. */
  public List<MountSpec> prepare(String key, String parent, Map<String, String> labels)
      throws SnapshotException {
    return create(Kind.ACTIVE, key, parent, labels);
  }

  /** A read-only view {@code key} of {@code parent}. */
  public List<MountSpec> view(String key, String parent, Map<String, String> labels)
      throws SnapshotException {
    return create(Kind.VIEW, key, parent, labels);
  }

  private List<MountSpec> create(Kind kind, String key, String parent, Map<String, String> labels)
      throws SnapshotException {
    String p = parent == null ? "" : parent;
    Map<String, String> l = labels == null ? Map.of() : labels;
    if (key == null || key.isEmpty()) {
      throw SnapshotException.invalidArgument("snapshot key must not be empty");
    }
    LazyLayer parentImage;
    synchronized (this) {
      checkCreate(key, p);
      parentImage = p.isEmpty() ? null : bottomImage(p);
    }
    String target = l.get(RemoteLayers.LABEL_TARGET);
    if (kind == Kind.ACTIVE && target != null && !target.isEmpty()) {
      synchronized (this) {
        if (store.get(target) != null) {
          throw SnapshotException.alreadyExists("target snapshot " + Filters.quote(target));
        }
      }
      LazyLayer lazy = remote.resolve(l, parentImage, !p.isEmpty());
      if (lazy != null) {
        commitRemote(key, target, p, l, lazy);
        throw SnapshotException.alreadyExists("target snapshot " + Filters.quote(target));
      }
    }
    synchronized (this) {
      checkCreate(key, p);
      long id = store.allocateId();
      try {
        Files.createDirectories(fsPath(id));
        if (kind == Kind.ACTIVE) {
          Files.createDirectories(workPath(id));
        }
      } catch (IOException e) {
        throw new SnapshotException(
            SnapshotException.Code.INTERNAL,
            "creating the directories of " + key + ": " + e.getMessage(),
            e);
      }
      Instant now = Instant.now();
      Entry e =
          new Entry(id, new SnapshotInfo(key, p, kind, l, now, now), SnapshotUsage.NONE, null);
      store.put(e);
      save();
      return mountsOf(e);
    }
  }

  private void checkCreate(String key, String parent) throws SnapshotException {
    if (store.get(key) != null) {
      throw SnapshotException.alreadyExists("snapshot " + key);
    }
    if (!parent.isEmpty()) {
      Entry pe = store.get(parent);
      if (pe == null) {
        throw SnapshotException.notFound("missing parent " + Filters.quote(parent));
      }
      if (pe.info().kind() != Kind.COMMITTED) {
        throw SnapshotException.invalidArgument(
            "parent " + Filters.quote(parent) + " is not committed snapshot");
      }
    }
  }

  /** The lazy image layer at the bottom of {@code name}'s chain, or null. */
  private LazyLayer bottomImage(String name) {
    Entry e = store.get(name);
    while (e != null) {
      if (e.lazy() != null && e.lazy().isImage()) {
        return e.lazy();
      }
      e = e.info().parent().isEmpty() ? null : store.get(e.info().parent());
    }
    return null;
  }

  /**
   * Commits a lazy layer under {@code target} (the image layer mounted first, outside the lock);
   * another Prepare that committed the same target meanwhile wins, and this one's mount is undone.
   */
  private void commitRemote(
      String key, String target, String parent, Map<String, String> labels, LazyLayer lazy)
      throws SnapshotException {
    long id;
    synchronized (this) {
      id = store.allocateId();
      pending.add(id);
    }
    try {
      commitRemote(id, key, target, parent, labels, lazy);
    } finally {
      synchronized (this) {
        pending.remove(id);
      }
    }
  }

  private void commitRemote(
      long id, String key, String target, String parent, Map<String, String> labels, LazyLayer lazy)
      throws SnapshotException {
    Path fs = fsPath(id);
    try {
      Files.createDirectories(fs);
    } catch (IOException e) {
      throw new SnapshotException(
          SnapshotException.Code.INTERNAL, "creating " + fs + ": " + e.getMessage(), e);
    }
    LazyLayer served = lazy;
    if (lazy.isImage()) {
      try {
        served = remote.mount(lazy, fs);
      } catch (SnapshotException | RuntimeException e) {
        deleteTree(fs.getParent());
        throw e;
      }
    }
    Map<String, String> l = new HashMap<>(labels);
    l.put(RemoteLayers.LABEL_TARGET, target);
    l.put(RemoteLayers.LABEL_LAZY_IMAGE, served.image());
    l.put(RemoteLayers.LABEL_LAZY_ROLE, served.role());
    synchronized (this) {
      boolean lost = store.get(target) != null;
      if (!lost) {
        Entry pe = parent.isEmpty() ? null : store.get(parent);
        lost = !parent.isEmpty() && (pe == null || pe.info().kind() != Kind.COMMITTED);
        if (lost) {
          undoMount(served, fs);
          throw SnapshotException.notFound(
              "parent " + Filters.quote(parent) + " was removed while " + key + " was prepared");
        }
        Instant now = Instant.now();
        store.put(
            new Entry(
                id,
                new SnapshotInfo(target, parent, Kind.COMMITTED, l, now, now),
                SnapshotUsage.NONE,
                served));
        save();
        LOG.info(
            "committed "
                + target
                + " ("
                + served.role()
                + " of "
                + served.image()
                + ") for "
                + key);
        return;
      }
    }
    undoMount(served, fs);
  }

  private void undoMount(LazyLayer served, Path fs) {
    if (served.isImage()) {
      remote.unmount(served, fs);
    }
    deleteTree(fs.getParent());
  }

  // ---- read
  // ---------------------------------------------------------------------------------------------------

  /** The mounts of an active snapshot or a view. */
  public List<MountSpec> mounts(String key) throws SnapshotException {
    Entry e;
    synchronized (this) {
      e = existing(key);
      if (e.info().kind() == Kind.COMMITTED) {
        throw SnapshotException.failedPrecondition(
            "requested snapshot " + key + " not active or view");
      }
    }
    return mountsOf(e);
  }

  public synchronized SnapshotInfo stat(String key) throws SnapshotException {
    return existing(key).info();
  }

  /** Every snapshot matching any of {@code filters}, by name. */
  public synchronized List<SnapshotInfo> walk(List<String> filters) throws SnapshotException {
    Predicate<SnapshotInfo> match = Filters.any(filters);
    List<SnapshotInfo> out = new ArrayList<>();
    for (Entry e : store.all()) {
      if (match.test(e.info())) {
        out.add(e.info());
      }
    }
    return out;
  }

  /**
   * Disk usage: an active snapshot's upper directory now; a committed one's as measured at Commit;
   * a lazy image layer's bytes on this host now (bootstrap and cached data) with its inodes.
   */
  public SnapshotUsage usage(String key) throws SnapshotException {
    Entry e;
    synchronized (this) {
      e = existing(key);
    }
    if (e.lazy() != null && e.lazy().isImage()) {
      ensureMounted(e);
      return remote.usage(e.lazy(), fsPath(e.id()));
    }
    if (e.info().kind() == Kind.ACTIVE) {
      try {
        return DiskUsage.of(fsPath(e.id()));
      } catch (IOException ex) {
        throw new SnapshotException(
            SnapshotException.Code.INTERNAL, "measuring " + key + ": " + ex.getMessage(), ex);
      }
    }
    return e.usage();
  }

  private Entry existing(String key) throws SnapshotException {
    Entry e = store.get(key);
    if (e == null) {
      throw SnapshotException.notFound("snapshot " + key + " does not exist");
    }
    return e;
  }

  // ---- change
  // -------------------------------------------------------------------------------------------------

  /**
   * Commits active snapshot {@code key} as {@code name}, with {@code labels} replacing its labels.
   */
  public void commit(String name, String key, Map<String, String> labels) throws SnapshotException {
    if (name == null || name.isEmpty()) {
      throw SnapshotException.invalidArgument("snapshot name must not be empty");
    }
    Entry e;
    synchronized (this) {
      checkCommit(name, key);
      e = store.get(key);
    }
    SnapshotUsage usage;
    try {
      usage = DiskUsage.of(fsPath(e.id()));
    } catch (IOException ex) {
      throw new SnapshotException(
          SnapshotException.Code.INTERNAL, "measuring " + key + ": " + ex.getMessage(), ex);
    }
    synchronized (this) {
      checkCommit(name, key);
      Instant now = Instant.now();
      SnapshotInfo i = e.info();
      store.remove(key);
      store.put(
          new Entry(
              e.id(),
              new SnapshotInfo(name, i.parent(), Kind.COMMITTED, labels, now, now),
              usage,
              null));
      save();
    }
  }

  private void checkCommit(String name, String key) throws SnapshotException {
    if (store.get(name) != null) {
      throw SnapshotException.alreadyExists("committed snapshot " + name);
    }
    Entry e = store.get(key);
    if (e == null) {
      throw SnapshotException.notFound("failed to get active snapshot " + Filters.quote(key));
    }
    if (e.info().kind() != Kind.ACTIVE) {
      throw SnapshotException.failedPrecondition(
          "snapshot " + Filters.quote(key) + " is not active");
    }
  }

  /**
   * Updates labels: {@code fieldPaths} {@code labels} (all of them) or {@code labels.KEY} (one;
   * absent from {@code info}: removed); none given: every mutable field, i.e. the labels. Other
   * fields are immutable.
   */
  public synchronized SnapshotInfo update(SnapshotInfo info, List<String> fieldPaths)
      throws SnapshotException {
    Entry e = existing(info.name());
    Map<String, String> labels = new HashMap<>(e.info().labels());
    if (fieldPaths.isEmpty()) {
      labels = new HashMap<>(info.labels());
    } else {
      for (String path : fieldPaths) {
        if (path.startsWith("labels.")) {
          String k = path.substring("labels.".length());
          String v = info.labels().get(k);
          if (v == null) {
            labels.remove(k);
          } else {
            labels.put(k, v);
          }
        } else if (path.equals("labels")) {
          labels = new HashMap<>(info.labels());
        } else {
          throw SnapshotException.invalidArgument(
              "cannot update "
                  + Filters.quote(path)
                  + " field on snapshot "
                  + Filters.quote(info.name()));
        }
      }
    }
    SnapshotInfo updated = e.info().withLabels(labels, Instant.now());
    store.put(e.withInfo(updated));
    save();
    return updated;
  }

  /**
   * Removes a snapshot without children; its directory goes too, and a lazy image's mount is
   * released (the daemon told, so it stops serving what nothing mounts).
   */
  public void remove(String key) throws SnapshotException {
    Entry e;
    synchronized (this) {
      e = existing(key);
      if (store.hasChildren(key)) {
        throw SnapshotException.failedPrecondition("cannot remove snapshot with child");
      }
      store.remove(key);
      save();
    }
    release(e);
  }

  private void release(Entry e) {
    Path fs = fsPath(e.id());
    if (e.lazy() != null && e.lazy().isImage()) {
      synchronized (mountLock(e.id())) {
        remote.unmount(e.lazy(), fs);
      }
    }
    deleteTree(fs.getParent());
  }

  /**
   * Removes what no snapshot owns: directories of removed or abandoned snapshots (a crash between a
   * directory and its record), unmounting a lazy mount left on one.
   */
  public void cleanup() throws SnapshotException {
    Set<String> owned = new HashSet<>();
    synchronized (this) {
      store.all().forEach(e -> owned.add(Long.toString(e.id())));
    }
    List<Path> orphans = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(snapshotsDir)) {
      for (Path d : ds) {
        if (!owned.contains(d.getFileName().toString())) {
          orphans.add(d);
        }
      }
    } catch (IOException ex) {
      throw new SnapshotException(
          SnapshotException.Code.INTERNAL, "listing " + snapshotsDir + ": " + ex.getMessage(), ex);
    }
    for (Path d : orphans) {
      synchronized (this) {
        if (isOwnedNow(d)) {
          continue; // made by a Prepare since the listing
        }
      }
      if (remote.isMounted(d.resolve("fs"))) {
        remote.unmount(null, d.resolve("fs"));
      }
      LOG.info("cleanup: removing " + d);
      deleteTree(d);
    }
  }

  private boolean isOwnedNow(Path dir) {
    String name = dir.getFileName().toString();
    for (Entry e : store.all()) {
      if (Long.toString(e.id()).equals(name)) {
        return true;
      }
    }
    try {
      return pending.contains(Long.parseLong(name)); // a lazy layer being mounted for a Prepare
    } catch (NumberFormatException e) {
      return false;
    }
  }

  // ---- lazy mounts
  // --------------------------------------------------------------------------------------------

  private synchronized Object mountLock(long id) {
    return mountLocks.computeIfAbsent(id, k -> new Object());
  }

  /**
   * Mounts a lazy image layer again when its mount is gone (the daemon unmounts what it serves when
   * it stops cleanly; a reboot unmounts everything), so no overlay is ever given an empty directory
   * as its lower layer.
   */
  private void ensureMounted(Entry e) throws SnapshotException {
    Path fs = fsPath(e.id());
    synchronized (mountLock(e.id())) {
      if (remote.isMounted(fs)) {
        return;
      }
      synchronized (this) {
        if (store.get(e.info().name()) == null) {
          throw SnapshotException.notFound("snapshot " + e.info().name() + " was removed");
        }
      }
      LOG.info("mounting " + e.lazy().image() + " again at " + fs);
      LazyLayer served = remote.mount(e.lazy(), fs);
      synchronized (this) {
        Entry now = store.get(e.info().name());
        if (now != null && !served.equals(now.lazy())) {
          store.put(now.withLazy(served));
          save();
        }
      }
    }
  }

  /**
   * Mounts every lazy image layer whose mount is missing (at start, and periodically: after the
   * daemon's restart); returns how many could not be mounted now.
   */
  public int remountMissing() {
    List<Entry> lazy = new ArrayList<>();
    synchronized (this) {
      store.all().stream().filter(e -> e.lazy() != null && e.lazy().isImage()).forEach(lazy::add);
    }
    int failed = 0;
    for (Entry e : lazy) {
      try {
        ensureMounted(e);
      } catch (SnapshotException ex) {
        if (ex.code() != SnapshotException.Code.NOT_FOUND) {
          failed++;
          LOG.warning(
              "cannot mount "
                  + e.lazy().image()
                  + " for snapshot "
                  + e.info().name()
                  + " now: "
                  + ex.getMessage());
        }
      }
    }
    return failed;
  }

  /** containerd's overlayfs mounts for {@code e}, with lazy parents as their EROFS mounts. */
  private List<MountSpec> mountsOf(Entry e) throws SnapshotException {
    List<String> lowers = new ArrayList<>();
    List<Entry> chain = new ArrayList<>();
    synchronized (this) {
      String p = e.info().parent();
      while (!p.isEmpty()) {
        Entry pe = store.get(p);
        if (pe == null) {
          throw SnapshotException.notFound(
              "parent " + Filters.quote(p) + " of " + e.info().name() + " does not exist");
        }
        chain.add(pe);
        p = pe.info().parent();
      }
    }
    for (Entry pe : chain) {
      if (pe.lazy() != null && !pe.lazy().isImage()) {
        continue; // a placeholder: its content is in the image layer below
      }
      if (pe.lazy() != null) {
        ensureMounted(pe);
      }
      lowers.add(fsPath(pe.id()).toString());
    }
    boolean active = e.info().kind() == Kind.ACTIVE;
    if (lowers.isEmpty()) {
      return List.of(
          new MountSpec("bind", fsPath(e.id()).toString(), List.of(active ? "rw" : "ro", "rbind")));
    }
    if (!active && lowers.size() == 1) {
      return List.of(new MountSpec("bind", lowers.get(0), List.of("ro", "rbind")));
    }
    List<String> options = new ArrayList<>();
    options.add("index=off");
    if (active) {
      options.add("workdir=" + workPath(e.id()));
      options.add("upperdir=" + fsPath(e.id()));
    }
    options.add("lowerdir=" + String.join(":", lowers));
    return List.of(new MountSpec("overlay", "overlay", options));
  }

  // ---- housekeeping
  // -------------------------------------------------------------------------------------------

  private void save() throws SnapshotException {
    try {
      store.save();
    } catch (IOException e) {
      throw new SnapshotException(
          SnapshotException.Code.INTERNAL, "saving snapshot metadata: " + e.getMessage(), e);
    }
  }

  private static void deleteTree(Path dir) {
    if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException | UncheckedIOException e) {
      LOG.warning("removing " + dir + ": " + e.getMessage() + " (Cleanup retries)");
    }
  }

  @Override
  public void close() {
    try {
      lock.release();
      lockFile.close();
    } catch (IOException e) {
      LOG.fine(() -> "releasing the root lock: " + e.getMessage());
    }
  }
}

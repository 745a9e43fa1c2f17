package dev.lazypull.prefetch;

import com.fasterxml.jackson.core.type.TypeReference;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.frontend.BlobListener;
import dev.lazypull.frontend.ServedBlob;
import dev.lazypull.image.Digest;
import dev.lazypull.image.Json;
import dev.lazypull.sys.AtomicFiles;
import dev.lazypull.sys.DaemonThreads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.logging.Logger;

/**
 * Applies prefetch policies as a front end starts serving blobs, and records access profiles: on
 * the first mount of an image with no profile, kernel requests during the first {@code
 * profileWindow} are recorded (in first-access order) and saved; on later mounts with policy {@code
 * profile} those ranges are prefetched as each blob is opened, ahead of the reader.
 */
public final class PrefetchManager implements BlobListener, AutoCloseable {
  private static final Logger LOG = Logger.getLogger(PrefetchManager.class.getName());
  private static final String POLICY_FILE = "prefetch-policy.json";

  private final Prefetcher prefetcher;
  private final PrefetchConfig config;
  private final Path stateDir;

  /** Profiles are aligned to the daemon's fetch unit. */
  private final int chunk;

  private final Map<String, PrefetchPolicy> policies = new ConcurrentHashMap<>();
  private final Map<String, Recording> recordings = new ConcurrentHashMap<>();
  private final ScheduledExecutorService timer =
      Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("lazypull-profile"));

  /**
   * Registry look-ups of published profiles: network I/O, kept off the timer that ends recording
   * windows.
   */
  private final ExecutorService fetcherThread =
      Executors.newSingleThreadExecutor(DaemonThreads.named("lazypull-profile-fetch"));

  /** READs of one image during its recording window. Appended from the poll thread: lock-free. */
  private static final class Recording {
    final ImageRecord image;
    final long startNanos = System.nanoTime();
    final ConcurrentLinkedQueue<AccessProfile.Range> reads = new ConcurrentLinkedQueue<>();

    /** reads.size() walks the queue: counted apart, as READs arrive on the poll thread. */
    final AtomicInteger count = new AtomicInteger();

    volatile boolean closed;

    Recording(ImageRecord image) {
      this.image = image;
    }
  }

  /** Served blobs of an image (by fsid), to replay a profile that arrives after its mount. */
  private final Function<String, List<ServedBlob>> openObjects;

  private volatile ProfileFetcher profileFetcher;

  public PrefetchManager(
      Prefetcher prefetcher,
      PrefetchConfig config,
      Path stateDir,
      int chunkSize,
      Function<String, List<ServedBlob>> openObjects) {
    this.openObjects = openObjects;
    this.prefetcher = prefetcher;
    this.chunk = chunkSize;
    this.config = config;
    this.stateDir = stateDir;
    loadPolicies();
  }

  public Prefetcher prefetcher() {
    return prefetcher;
  }

  public PrefetchPolicy policyOf(String fsid) {
    return policies.getOrDefault(fsid, config.policy());
  }

  public void setPolicy(String fsid, PrefetchPolicy policy) {
    if (policy == null) {
      policies.remove(fsid);
    } else {
      policies.put(fsid, policy);
    }
    savePolicies();
  }

  public void setProfileFetcher(ProfileFetcher fetcher) {
    this.profileFetcher = fetcher;
  }

  /**
   * A newly registered image without a local profile: looks for one next to the image (best effort,
   * on the profile thread — registration never waits for it or fails because of it). A profile
   * found is saved and replaces a recording in progress; if the image is already mounted with
   * policy {@code profile}, it is replayed for the open objects at once. A local profile recorded
   * meanwhile wins.
   */
  public void imageRegistered(ImageRecord image) {
    ProfileFetcher f = profileFetcher;
    Path local = AccessProfile.path(stateDir, image.manifestDigest());
    if (f == null || Files.exists(local)) {
      return;
    }
    try {
      fetcherThread.execute(() -> fetchProfile(f, image, local));
    } catch (RejectedExecutionException e) {
      LOG.fine(() -> "not fetching the profile of " + image.fsid() + ": shutting down");
    }
  }

  private void fetchProfile(ProfileFetcher f, ImageRecord image, Path local) {
    try {
      Optional<AccessProfile> p = f.fetch(image);
      if (p.isEmpty()) {
        LOG.fine(() -> "no access profile published for " + image.fsid());
        return;
      }
      if (!p.get().manifestDigest().equals(image.manifestDigest().toString())
          || Files.exists(local)) {
        return;
      }
      p.get().save(stateDir);
      Recording rec = recordings.remove(image.fsid());
      if (rec != null) {
        rec.closed = true;
      }
      LOG.info(
          "fetched the access profile of "
              + image.fsid()
              + " from its registry: "
              + p.get().ranges().size()
              + " ranges, "
              + p.get().totalBytes()
              + " bytes");
      if (policyOf(image.fsid()) == PrefetchPolicy.PROFILE) {
        openObjects.apply(image.fsid()).forEach(this::replay);
      }
    } catch (IOException | RuntimeException e) {
      LOG.warning(
          "fetching the access profile of "
              + image.fsid()
              + " ("
              + image.reference()
              + "): "
              + e.getMessage()
              + "; continuing without it");
    }
  }

  @Override
  public void opened(ServedBlob object) {
    ImageRecord image = object.binding().image();
    if (object.binding().isBootstrap()
        && !Files.exists(AccessProfile.path(stateDir, image.manifestDigest()))
        && config.profileWindow().toMillis() > 0) {
      Recording rec = new Recording(image);
      if (recordings.putIfAbsent(image.fsid(), rec) == null) {
        timer.schedule(
            () -> finish(image.fsid(), rec),
            config.profileWindow().toMillis(),
            TimeUnit.MILLISECONDS);
        LOG.fine(() -> "recording the access profile of " + image.fsid());
      }
    }
    switch (policyOf(image.fsid())) {
      case ALL ->
          prefetcher.start(
              "all:" + image.fsid() + ":" + object.binding().blob().digest().shortHex(),
              image.fsid(),
              List.of(new Prefetcher.Target(object, null)));
      case PROFILE -> replay(object);
      case NONE -> {}
    }
  }

  /**
   * The last profile read, with the file's identity then: a mount's objects open back to back and
   * share it.
   */
  private volatile LastProfile lastProfile;

  private record LastProfile(
      Path path, FileTime mtime, long size, Optional<AccessProfile> profile) {}

  /**
   * {@link AccessProfile#load}, reused while the file is unchanged (each blob object of a mount
   * replays it).
   */
  private Optional<AccessProfile> loadProfile(Digest manifest) throws IOException {
    Path p = AccessProfile.path(stateDir, manifest);
    BasicFileAttributes a;
    try {
      a = Files.readAttributes(p, BasicFileAttributes.class);
    } catch (NoSuchFileException e) {
      return Optional.empty();
    }
    LastProfile last = lastProfile;
    if (last != null
        && last.path().equals(p)
        && last.mtime().equals(a.lastModifiedTime())
        && last.size() == a.size()) {
      return last.profile();
    }
    Optional<AccessProfile> loaded = AccessProfile.load(stateDir, manifest);
    lastProfile = new LastProfile(p, a.lastModifiedTime(), a.size(), loaded);
    return loaded;
  }

  private void replay(ServedBlob object) {
    ImageRecord image = object.binding().image();
    Optional<AccessProfile> profile;
    try {
      profile = loadProfile(image.manifestDigest());
    } catch (IOException e) {
      LOG.warning("access profile of " + image.fsid() + ": " + e.getMessage());
      return;
    }
    if (profile.isEmpty()) {
      return;
    }
    String blob = object.binding().blob().digest().toString();
    List<long[]> ranges = new ArrayList<>();
    for (AccessProfile.Range r : profile.get().ranges()) {
      if (r.blob().equals(blob)) {
        ranges.add(new long[] {r.offset(), r.length()});
      }
    }
    if (!ranges.isEmpty()) {
      prefetcher.start(
          "profile:" + image.fsid() + ":" + object.binding().blob().digest().shortHex(),
          image.fsid(),
          List.of(new Prefetcher.Target(object, ranges)));
    }
  }

  @Override
  public void read(ServedBlob object, long offset, long length) {
    Recording rec = recordings.get(object.binding().image().fsid());
    if (rec != null && !rec.closed && rec.count.getAndIncrement() < AccessProfile.MAX_RANGES) {
      rec.reads.add(
          new AccessProfile.Range(object.binding().blob().digest().toString(), offset, length));
    }
  }

  @Override
  public void closed(ServedBlob object) {
    if (object.binding().isBootstrap()) {
      Recording rec = recordings.get(object.binding().image().fsid());
      if (rec != null) {
        timer.execute(
            () -> finish(object.binding().image().fsid(), rec)); // umount ends the window early
      }
    }
  }

  /** Saves a recording as a profile: chunk-aligned, each chunk once, in first-access order. */
  private void finish(String fsid, Recording rec) {
    if (rec.closed || !recordings.remove(fsid, rec)) {
      return;
    }
    rec.closed = true;
    if (Files.exists(AccessProfile.path(stateDir, rec.image.manifestDigest()))) {
      LOG.fine(() -> "a profile of " + fsid + " arrived while recording one: keeping it");
      return;
    }
    Map<String, Long> sizes = new HashMap<>();
    sizes.put(rec.image.bootstrap().digest().toString(), rec.image.bootstrap().size());
    rec.image.blobs().forEach(b -> sizes.put(b.digest().toString(), b.size()));
    Map<String, Set<Long>> order = new LinkedHashMap<>();
    List<String> blobOrder = new ArrayList<>();
    List<long[]> firstAccess = new ArrayList<>(); // (blob index, chunk) in order
    for (AccessProfile.Range r : rec.reads) {
      Long size = sizes.get(r.blob());
      if (size == null) {
        continue;
      }
      Set<Long> seen =
          order.computeIfAbsent(
              r.blob(),
              k -> {
                blobOrder.add(k);
                return new LinkedHashSet<>();
              });
      long end = Math.min(r.offset() + r.length(), size);
      for (long c = r.offset() / chunk; c * chunk < end; c++) {
        if (seen.add(c)) {
          firstAccess.add(new long[] {blobOrder.indexOf(r.blob()), c});
        }
      }
    }
    List<AccessProfile.Range> ranges = new ArrayList<>();
    for (long[] a : firstAccess) {
      String blob = blobOrder.get((int) a[0]);
      long off = a[1] * chunk;
      long len = Math.min(chunk, sizes.get(blob) - off);
      AccessProfile.Range last = ranges.isEmpty() ? null : ranges.get(ranges.size() - 1);
      if (last != null && last.blob().equals(blob) && last.offset() + last.length() == off) {
        ranges.set(
            ranges.size() - 1, new AccessProfile.Range(blob, last.offset(), last.length() + len));
      } else {
        ranges.add(new AccessProfile.Range(blob, off, len));
      }
    }
    AccessProfile profile =
        new AccessProfile(
            1,
            rec.image.manifestDigest().toString(),
            (System.nanoTime() - rec.startNanos) / 1_000_000,
            ranges);
    try {
      profile.save(stateDir);
      LOG.info(
          "saved the access profile of "
              + fsid
              + ": "
              + ranges.size()
              + " ranges, "
              + profile.totalBytes()
              + " bytes");
    } catch (IOException e) {
      LOG.warning("saving the access profile of " + fsid + ": " + e.getMessage());
    }
  }

  private void loadPolicies() {
    Path p = stateDir.resolve(POLICY_FILE);
    if (!Files.exists(p)) {
      return;
    }
    try {
      Map<String, String> saved =
          Json.MAPPER.readValue(
              Files.readAllBytes(p), new TypeReference<HashMap<String, String>>() {});
      saved.forEach((k, v) -> policies.put(k, PrefetchPolicy.parse(v)));
    } catch (IOException | RuntimeException e) {
      LOG.warning(
          p + ": " + e.getMessage() + "; using the default prefetch policy for every image");
    }
  }

  private void savePolicies() {
    try {
      Map<String, String> out = new HashMap<>();
      policies.forEach((k, v) -> out.put(k, v.text()));
      AtomicFiles.write(stateDir.resolve(POLICY_FILE), Json.write(out));
    } catch (IOException e) {
      LOG.warning("saving prefetch policies: " + e.getMessage());
    }
  }

  @Override
  public void close() {
    fetcherThread.shutdownNow();
    timer.shutdownNow();
    prefetcher.close();
  }
}

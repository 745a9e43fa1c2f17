package dev.lazypull.fscache;

import com.fasterxml.jackson.core.type.TypeReference;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.frontend.CacheKeeper;
import dev.lazypull.image.Json;
import dev.lazypull.sys.AtomicFiles;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Posix;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * Keeps the cachefiles cache within a size budget. In on-demand mode the kernel never culls by
 * itself: the daemon must. Cache files live at {@code <cache>/cache/I<volume key>/@<hash>/D<cookie
 * key>}; whole files of objects not in use are culled, least recently used first, with the
 * devnode's {@code inuse}/{@code cull} commands — which act on the process's working directory, so
 * the janitor {@code chdir}s into the fan-out directory for each one (process-wide: every other
 * path lazypull uses is absolute). Culled data is simply fetched again on the next miss.
 */
public final class CacheJanitor implements CacheKeeper {
  private static final Logger LOG = Logger.getLogger(CacheJanitor.class.getName());
  private static final Object CWD_LOCK = new Object();
  private static final String USAGE_FILE = "cache-usage.json";

  /**
   * A cache file the kernel is using right now (its object is open), with the bytes the daemon
   * knows it holds.
   */
  public record OpenCookie(String volumeKey, String cookieKey, long readyBytes) {}

  /** One file in the cache tree. */
  public record Entry(
      String volumeKey, String cookieKey, Path file, long bytes, long lastUsedMillis) {}

  public enum CullResult {
    CULLED,
    IN_USE,
    GONE
  }

  private final Devnode devnode;
  private final Path cacheDir;
  private final Path usageFile;
  private final long budget;
  private final Supplier<List<OpenCookie>> openCookies;
  private final Map<String, Long> lastUse = new ConcurrentHashMap<>();

  /**
   * @param budget bytes the cache may occupy; 0 means no limit (eviction on request only)
   */
  public CacheJanitor(
      Devnode devnode,
      Path cacheDir,
      Path stateDir,
      long budget,
      Supplier<List<OpenCookie>> openCookies) {
    this.devnode = devnode;
    this.cacheDir = cacheDir;
    this.usageFile = stateDir == null ? null : stateDir.resolve(USAGE_FILE);
    this.budget = budget;
    this.openCookies = openCookies;
    loadUsage();
  }

  @Override
  public long budget() {
    return budget;
  }

  static String key(String volumeKey, String cookieKey) {
    return volumeKey + "\0" + cookieKey;
  }

  /** Records a use of a cache file (OPEN, READ): the LRU order. */
  public void touch(String volumeKey, String cookieKey) {
    lastUse.put(key(volumeKey, cookieKey), System.currentTimeMillis());
  }

  /** Every cache file in the tree, with its allocated size. */
  public List<Entry> scan() throws IOException {
    List<Entry> out = new ArrayList<>();
    Path tree = cacheDir.resolve("cache");
    if (!Files.isDirectory(tree)) {
      return out;
    }
    try (DirectoryStream<Path> volumes = Files.newDirectoryStream(tree, "I*")) {
      for (Path volume : volumes) {
        if (!Files.isDirectory(volume)) {
          continue;
        }
        String volumeKey = volume.getFileName().toString().substring(1);
        try (DirectoryStream<Path> fans = Files.newDirectoryStream(volume, "@*")) {
          for (Path fan : fans) {
            try (DirectoryStream<Path> files = Files.newDirectoryStream(fan)) {
              for (Path f : files) {
                if (!Files.isRegularFile(f)) {
                  continue;
                }
                String name = f.getFileName().toString();
                String cookie = name.startsWith("D") ? name.substring(1) : name;
                long bytes = Posix.allocatedBytes(f.toString());
                Long used = lastUse.get(key(volumeKey, cookie));
                long when = used != null ? used : Files.getLastModifiedTime(f).toMillis();
                out.add(new Entry(volumeKey, cookie, f, bytes, when));
              }
            }
          }
        }
      }
    }
    return out;
  }

  /**
   * Bytes the cache occupies: every file in the tree, plus what open objects hold in files not yet
   * linked into the tree (cachefiles keeps new objects in tmpfiles until they are released).
   */
  @Override
  public long usage() throws IOException {
    return usage(scan());
  }

  private long usage(List<Entry> entries) {
    long n = 0;
    Set<String> inTree = new HashSet<>();
    for (Entry e : entries) {
      n += e.bytes();
      inTree.add(key(e.volumeKey(), e.cookieKey()));
    }
    for (OpenCookie o : openCookies.get()) {
      if (!inTree.contains(key(o.volumeKey(), o.cookieKey()))) {
        n += o.readyBytes();
      }
    }
    return n;
  }

  /**
   * Culls least-recently-used files not in use until the cache fits the budget (no-op without a
   * budget).
   */
  public Report collect() throws IOException {
    return collect(budget);
  }

  /** {@link #collect()} against a one-off budget ({@code lazypull gc --budget}). */
  @Override
  public synchronized Report collect(long budget) throws IOException {
    List<Entry> entries = scan();
    long before = usage(entries);
    long usage = before;
    int culled = 0;
    int inUse = 0;
    long freed = 0;
    List<String> skipped = new ArrayList<>();
    if (budget > 0 && usage > budget) {
      Set<String> open = openKeys();
      entries.sort(Comparator.comparingLong(Entry::lastUsedMillis));
      for (Entry e : entries) {
        if (usage <= budget) {
          break;
        }
        if (open.contains(key(e.volumeKey(), e.cookieKey()))) {
          inUse++;
          continue;
        }
        CullResult r = cull(e);
        if (r == CullResult.CULLED) {
          culled++;
          freed += e.bytes();
          usage -= e.bytes();
        } else if (r == CullResult.IN_USE) {
          inUse++;
          skipped.add(e.cookieKey());
        }
      }
      if (usage > budget) {
        LOG.warning(
            "cache uses "
                + usage
                + " bytes, over its budget of "
                + budget
                + ": the rest is in use");
      }
    }
    cleanGraveyard();
    saveUsage();
    return new Report(before, usage, budget, culled, freed, inUse, skipped);
  }

  /**
   * Removes an image's cache files (bootstrap and data blobs) that no mount is using. Blobs the
   * image shares with other registered images of its volume are kept unless {@code includeShared}.
   */
  @Override
  public synchronized Report evict(ImageRecord image, List<ImageRecord> all, boolean includeShared)
      throws IOException {
    String volumeKey = "erofs," + image.volumeName();
    Set<String> cookies = new HashSet<>();
    cookies.add(image.fsid());
    List<String> skipped = new ArrayList<>();
    for (String name : image.deviceNames()) {
      boolean shared =
          all.stream()
              .anyMatch(
                  o ->
                      !o.fsid().equals(image.fsid())
                          && o.volumeName().equals(image.volumeName())
                          && o.deviceNames().contains(name));
      if (shared && !includeShared) {
        skipped.add(name);
      } else {
        cookies.add(name);
      }
    }
    List<Entry> entries = scan();
    long before = usage(entries);
    int culled = 0;
    int inUse = 0;
    long freed = 0;
    for (Entry e : entries) {
      if (!e.volumeKey().equals(volumeKey) || !cookies.contains(e.cookieKey())) {
        continue;
      }
      CullResult r = cull(e);
      if (r == CullResult.CULLED) {
        culled++;
        freed += e.bytes();
      } else if (r == CullResult.IN_USE) {
        inUse++;
        skipped.add(e.cookieKey());
      }
    }
    return new Report(before, before - freed, budget, culled, freed, inUse, skipped);
  }

  private Set<String> openKeys() {
    Set<String> open = new HashSet<>();
    for (OpenCookie o : openCookies.get()) {
      open.add(key(o.volumeKey(), o.cookieKey()));
    }
    return open;
  }

  /** {@code inuse} then {@code cull} of one file, from inside its directory. */
  CullResult cull(Entry e) throws IOException {
    String name = e.file().getFileName().toString();
    synchronized (CWD_LOCK) {
      Posix.chdir(e.file().getParent().toString());
      try {
        devnode.command(DevnodeCommand.inuse(name));
        devnode.command(DevnodeCommand.cull(name));
        lastUse.remove(key(e.volumeKey(), e.cookieKey()));
        LOG.info("culled " + e.volumeKey() + " / " + e.cookieKey() + " (" + e.bytes() + " bytes)");
        return CullResult.CULLED;
      } catch (ErrnoException x) {
        if (x.errno() == Errno.EBUSY) {
          return CullResult.IN_USE;
        }
        if (x.errno() == Errno.ESTALE || x.errno() == Errno.ENOENT) {
          return CullResult.GONE;
        }
        throw x;
      } finally {
        Posix.chdir("/");
      }
    }
  }

  /** cachefiles moves buried directories (never files) to graveyard/ for userspace to delete. */
  private void cleanGraveyard() {
    Path graveyard = cacheDir.resolve("graveyard");
    if (!Files.isDirectory(graveyard)) {
      return;
    }
    try (var walk = Files.walk(graveyard)) {
      walk.sorted(Comparator.reverseOrder())
          .filter(p -> !p.equals(graveyard))
          .forEach(
              p -> {
                try {
                  Files.deleteIfExists(p);
                } catch (IOException e) {
                  LOG.fine("graveyard: " + e.getMessage());
                }
              });
    } catch (IOException e) {
      LOG.fine("graveyard: " + e.getMessage());
    }
  }

  private void loadUsage() {
    if (usageFile == null || !Files.exists(usageFile)) {
      return;
    }
    try {
      Map<String, Long> saved =
          Json.MAPPER.readValue(
              Files.readAllBytes(usageFile), new TypeReference<HashMap<String, Long>>() {});
      lastUse.putAll(saved);
    } catch (IOException | RuntimeException e) {
      LOG.warning(
          usageFile + ": unreadable, starting LRU order from file times (" + e.getMessage() + ")");
    }
  }

  /**
   * Persists the LRU order (best effort: losing it only makes the order fall back to file times).
   */
  @Override
  public void saveUsage() {
    if (usageFile == null) {
      return;
    }
    try {
      AtomicFiles.write(usageFile, Json.write(new HashMap<>(lastUse)));
    } catch (IOException e) {
      LOG.fine("saving cache usage: " + e.getMessage());
    }
  }
}

package dev.lazypull.fetch;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.Digest;
import dev.lazypull.sys.AlignedBuffers;
import dev.lazypull.sys.Posix;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The host's blob cache: one directory that every front end and every lazypull process on the
 * machine shares — one file per blob ({@code blobs/sha256/<hex>}, a {@link BlobCacheFile}), its
 * claims ({@code blobs/claims/<hex>}) and verified chunk digest tables ({@code tables/<hex>}).
 * Concurrent users of a blob, in this process or in others, fetch each chunk once. In this process
 * each blob's file is opened once and shared.
 *
 * <p>Opening checks that the directory's file system reports holes: readiness is rebuilt from
 * SEEK_HOLE, and a file system that reports a whole sparse file as data would make never-fetched
 * ranges look cached.
 */
public final class BlobCacheDir implements Closeable {
  /**
   * Probe file size: large enough that file systems with big allocation units still show a hole.
   */
  private static final long PROBE_SIZE = 8L << 20;

  /**
   * What a user asks for decides how the file's fetches are verified: one open file per distinct
   * ask.
   */
  private record Key(Digest blob, Digest table, boolean metadata) {
    static Key of(BlobRef ref) {
      return new Key(
          ref.blob().digest(), ref.table() == null ? null : ref.table().digest(), ref.metadata());
    }
  }

  private final Path root;
  private final FetchCore core;
  private final Map<Key, BlobCacheFile> files = new HashMap<>();

  /** Users of each open file ({@link #file} takes one, {@link #release} gives one back). */
  private final Map<BlobCacheFile, Integer> users = new HashMap<>();

  private final Map<Digest, ClaimsFile> claims = new HashMap<>();
  private boolean closed;

  private BlobCacheDir(Path root, FetchCore core) {
    this.root = root;
    this.core = core;
  }

  /**
   * Creates the directory if needed (mode 0700: cached image bytes may be private) and checks hole
   * reporting. {@code core} fetches for it; build it with {@link #tablesDir} as its table store.
   *
   * @throws IOException if the directory cannot be used, naming why
   */
  public static BlobCacheDir open(Path root, FetchCore core) throws IOException {
    Path abs = root.toAbsolutePath().normalize();
    if (!Files.isDirectory(abs)) {
      Files.createDirectories(abs);
      Files.setPosixFilePermissions(abs, PosixFilePermissions.fromString("rwx------"));
    }
    checkReportsHoles(abs);
    return new BlobCacheDir(abs, core);
  }

  /** Where the cache rooted at {@code root} keeps verified chunk digest tables. */
  public static Path tablesDir(Path root) {
    return root.toAbsolutePath().normalize().resolve("tables");
  }

  /** Where the cache rooted at {@code root} keeps blob files. */
  static Path blobsDir(Path root) {
    return root.resolve("blobs").resolve("sha256");
  }

  /** Where the cache rooted at {@code root} keeps the claims of blob {@code hex}. */
  static Path claimsPath(Path root, String hex) {
    return root.resolve("blobs").resolve("claims").resolve(hex);
  }

  static void checkReportsHoles(Path dir) throws IOException {
    Path probe = dir.resolve(".hole-probe-" + ProcessHandle.current().pid());
    int fd =
        Posix.open(
            probe.toString(), Posix.O_RDWR | Posix.O_CREAT | Posix.O_TRUNC | Posix.O_CLOEXEC, 0600);
    try {
      ByteBuffer block = AlignedBuffers.allocate(AlignedBuffers.ALIGNMENT);
      block.put(0, (byte) 1);
      Posix.ftruncate(fd, PROBE_SIZE);
      Posix.pwrite(fd, block, 0);
      long hole = Posix.lseek(fd, 0, Posix.SEEK_HOLE);
      if (hole < 0 || hole >= PROBE_SIZE) {
        throw new IOException(
            "cache dir "
                + dir
                + ": its file system does not report holes in sparse files "
                + "(SEEK_HOLE), so cached ranges could not be told from missing ones; use ext4, xfs, btrfs or tmpfs");
      }
    } finally {
      Posix.closeQuietly(fd);
      Files.deleteIfExists(probe);
    }
  }

  public Path root() {
    return root;
  }

  public FetchCore core() {
    return core;
  }

  public Path pathOf(Digest digest) {
    return blobsDir(root).resolve(digest.hex());
  }

  /**
   * The cache file of {@code ref}'s blob, opened on first use (later calls with the same ask return
   * the same instance, one more user each); its fetcher — verification per {@link FetchCore#open} —
   * becomes ready in the background. Users that come and go give it back with {@link #release};
   * others keep it until {@link #close}.
   *
   * @throws IOException if the file cannot be opened
   */
  public synchronized BlobCacheFile file(BlobRef ref, BlobSource source) throws IOException {
    if (closed) {
      throw new IOException("cache dir " + root + " is closed");
    }
    Key key = Key.of(ref);
    BlobCacheFile f = files.get(key);
    if (f != null && f.ref().deviceSize() == ref.deviceSize()) {
      users.merge(f, 1, Integer::sum);
      return f;
    }
    Digest digest = ref.blob().digest();
    for (BlobCacheFile open : files.values()) {
      if (open.ref().blob().digest().equals(digest)
          && open.ref().deviceSize() != ref.deviceSize()) {
        throw new IOException(
            "blob "
                + digest
                + " is listed with sizes "
                + open.ref().deviceSize()
                + " and "
                + ref.deviceSize());
      }
    }
    ClaimsFile c = claims.computeIfAbsent(digest, d -> new ClaimsFile(claimsPath(root, d.hex())));
    f = BlobCacheFile.open(pathOf(digest), c, ref, source, core);
    files.put(key, f);
    users.put(f, 1);
    return f;
  }

  /**
   * Gives back one use of {@code f}; the last one closes it (its in-use lock goes: the collector
   * may remove it once nobody else on the host uses it).
   */
  public void release(BlobCacheFile f) {
    synchronized (this) {
      Integer n = users.get(f);
      if (n == null) {
        return;
      }
      if (n > 1) {
        users.put(f, n - 1);
        return;
      }
      users.remove(f);
      files.values().remove(f);
    }
    f.close();
  }

  /** Closes every file (their in-use locks and claims go with them). */
  @Override
  public void close() {
    List<BlobCacheFile> all;
    List<ClaimsFile> allClaims;
    synchronized (this) {
      closed = true;
      all = new ArrayList<>(files.values());
      allClaims = new ArrayList<>(claims.values());
      files.clear();
      users.clear();
      claims.clear();
    }
    for (BlobCacheFile f : all) {
      f.close();
    }
    for (ClaimsFile c : allClaims) {
      c.close();
    }
  }
}

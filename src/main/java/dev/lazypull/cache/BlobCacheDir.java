package dev.lazypull.cache;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.sys.AlignedBuffers;
import dev.lazypull.sys.Posix;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A directory of {@link BlobCacheFile}s, one per blob digest ({@code DIR/sha256/<hex>}), opened once each and
 * shared by every user in this process, plus verified copies of chunk digest tables ({@code DIR/tables/<hex>}).
 *
 * <p>Opening checks that the directory's file system reports holes: readiness is rebuilt from SEEK_HOLE, and
 * a file system that reports a whole sparse file as data would make never-fetched ranges look cached.
 */
public final class BlobCacheDir implements Closeable {
  /** Probe file size: large enough that file systems with big allocation units still show a hole. */
  private static final long PROBE_SIZE = 8L << 20;

  private final Path dir;
  private final FetchContext ctx;
  private final Map<Digest, BlobCacheFile> files = new HashMap<>();
  private boolean closed;

  private BlobCacheDir(Path dir, FetchContext ctx) {
    this.dir = dir;
    this.ctx = ctx;
  }

  /**
   * Creates the directory if needed (mode 0700: cached image bytes may be private) and checks hole reporting.
   *
   * @throws IOException if the directory cannot be used, naming why
   */
  public static BlobCacheDir open(Path dir, FetchContext ctx) throws IOException {
    Path abs = dir.toAbsolutePath().normalize();
    if (!Files.isDirectory(abs)) {
      Files.createDirectories(abs);
      Files.setPosixFilePermissions(abs, java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
    }
    checkReportsHoles(abs);
    return new BlobCacheDir(abs, ctx);
  }

  static void checkReportsHoles(Path dir) throws IOException {
    Path probe = dir.resolve(".hole-probe-" + ProcessHandle.current().pid());
    int fd = Posix.open(probe.toString(), Posix.O_RDWR | Posix.O_CREAT | Posix.O_TRUNC | Posix.O_CLOEXEC, 0600);
    try {
      ByteBuffer block = AlignedBuffers.allocate(AlignedBuffers.ALIGNMENT);
      block.put(0, (byte) 1);
      Posix.ftruncate(fd, PROBE_SIZE);
      Posix.pwrite(fd, block, 0);
      long hole = Posix.lseek(fd, 0, Posix.SEEK_HOLE);
      if (hole < 0 || hole >= PROBE_SIZE) {
        throw new IOException("cache dir " + dir + ": its file system does not report holes in sparse files "
            + "(SEEK_HOLE), so cached ranges could not be told from missing ones; use ext4, xfs, btrfs or tmpfs");
      }
    } finally {
      Posix.closeQuietly(fd);
      Files.deleteIfExists(probe);
    }
  }

  public Path dir() {
    return dir;
  }

  public Path pathOf(Digest digest) {
    return dir.resolve("sha256").resolve(digest.hex());
  }

  /** The cache file of {@code blob}, opened on first use; later calls return the same instance. */
  public BlobCacheFile file(Descriptor blob, BlobSource source) throws IOException {
    return file(blob, source, null);
  }

  /**
   * {@link #file(Descriptor, BlobSource)}, verifying every fetch against the chunk digest table {@code table}
   * (when not null): the table is loaded and checked first (blocking; a few hundred KiB at most for
   * realistic blobs), and the file is handed out only with verification on.
   *
   * @throws IOException if the table cannot be loaded or checked, naming it
   */
  public BlobCacheFile file(Descriptor blob, BlobSource source, Descriptor table) throws IOException {
    synchronized (this) {
      BlobCacheFile open = files.get(blob.digest());
      if (open != null && (table == null || open.verifying())) {
        return open(blob, source, null); // already set up: no second table load
      }
    }
    ChunkDigestTable t = table == null ? null : loadTable(table, blob, source);
    synchronized (this) {
      return open(blob, source, t);
    }
  }

  /**
   * The cache file of an image's bootstrap, every fetch of it verified against the bootstrap's own digest (it
   * has no chunk table: it is fetched and checked as one unit, see {@link ChunkDigestTable#whole}). A bootstrap
   * too large for that is served unverified, with a warning.
   */
  public BlobCacheFile bootstrap(Descriptor boot, BlobSource source) throws IOException {
    ChunkDigestTable whole = ChunkDigestTable.whole(boot);
    if (whole == null) {
      java.util.logging.Logger.getLogger(BlobCacheDir.class.getName()).warning("bootstrap " + boot.digest() + " is "
          + boot.size() + " bytes, over the " + ChunkDigestTable.MAX_WHOLE_BYTES + " verified as one unit: "
          + "its bytes are not checked");
    }
    synchronized (this) {
      return open(boot, source, whole);
    }
  }

  /**
   * A chunk digest table from {@code DIR/tables/<hex>} when a copy is there and still hashes to its digest, else
   * from {@code source} (then kept there), so an export or prefetch of a fully cached image reads nothing but
   * its manifest from the registry.
   */
  private ChunkDigestTable loadTable(Descriptor table, Descriptor blob, BlobSource source) throws IOException {
    Path p = dir.resolve("tables").resolve(table.digest().hex());
    if (Files.isRegularFile(p) && Files.size(p) == table.size() && table.size() <= ChunkTables.MAX_TABLE_BYTES) {
      byte[] local = Files.readAllBytes(p);
      if (Digest.of(local).equals(table.digest())) {
        return ChunkDigestTable.decode(local, blob.size());
      }
    }
    byte[] bytes = ChunkTables.fetch(table, source);
    ChunkDigestTable decoded = ChunkDigestTable.decode(bytes, blob.size());
    dev.lazypull.sys.AtomicFiles.write(p, bytes);
    return decoded;
  }

  /** The open file of {@code blob}, opened now if need be; verifying against {@code table} when not null. */
  private BlobCacheFile open(Descriptor blob, BlobSource source, ChunkDigestTable table) throws IOException {
    if (closed) {
      throw new IOException("cache dir " + dir + " is closed");
    }
    BlobCacheFile f = files.get(blob.digest());
    if (f == null) {
      f = BlobCacheFile.open(pathOf(blob.digest()), blob, source, ctx, table);
      files.put(blob.digest(), f);
    } else if (f.blob().size() != blob.size()) {
      throw new IOException("blob " + blob.digest() + " is listed with sizes " + f.blob().size() + " and "
          + blob.size());
    } else if (table != null && !f.verifying()) {
      f.verifyWith(table); // opened unverified before: verified from now on, on its fixed chunks
    }
    return f;
  }

  /** Closes every file (their locks go with them). */
  @Override
  public void close() {
    List<BlobCacheFile> all;
    synchronized (this) {
      closed = true;
      all = new ArrayList<>(files.values());
      files.clear();
    }
    for (BlobCacheFile f : all) {
      f.close();
    }
  }
}

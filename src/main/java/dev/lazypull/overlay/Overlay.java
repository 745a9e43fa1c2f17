package dev.lazypull.overlay;

import dev.lazypull.sys.AtomicFiles;
import dev.lazypull.sys.GuardedFd;
import dev.lazypull.sys.Posix;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;
import java.util.logging.Logger;

/**
 * A writable copy-on-write layer over a read-only base device, kept in one directory:
 *
 * <ul>
 *   <li>{@code data}: a sparse file the size of the device; block b lives at byte b × block size;
 *   <li>{@code state}: the block states ({@link BlockStates}: dirty, zero; the rest untouched,
 *       reading the base) as of the last flush, replaced atomically;
 *   <li>{@code overlay.json}: what it lies over ({@link OverlayMeta});
 *   <li>{@code lock}: held (flock) by the one process serving the overlay, which writes its pid
 *       there.
 * </ul>
 *
 * <p><b>Writes.</b> Whole blocks are written to the data file and become dirty — or, when all their
 * bytes are zero (a fast check per block), become zero and are punched out of the data file. A
 * block written in part takes its other bytes from where it read before: in place when it is dirty,
 * else merged in memory with zeros (zero) or with the base's bytes (untouched; fetched first,
 * lazily, through the base) and written whole. Zeroing (TRIM, WRITE_ZEROES) marks whole blocks zero
 * and punches them; partial blocks are written with zeros the same way.
 *
 * <p><b>Durability.</b> {@link #flush} fdatasyncs the data file, then replaces the state file
 * atomically (a synced temporary file renamed over it, the directory synced). Invariant: the data
 * file's bytes matter only for blocks the state calls dirty, and a block becomes dirty only by a
 * whole-block write that was synced before the state saying so. So after a crash, blocks read as
 * they were at the last flush, or as a write completed after it — never as bytes that were never
 * written.
 *
 * <p><b>Threads.</b> Reads take the state lock only to cut their range into pieces, then read
 * without it (a block never returns to untouched, so a piece read from the base was prepared).
 * Writes and zeroings are applied one at a time (the write lock), which keeps a partial block's
 * read-merge-write whole against other writes. Flushes are serialised; one that finds nothing
 * changed since the last returns at once.
 */
public final class Overlay implements Closeable {
  private static final Logger LOG = Logger.getLogger(Overlay.class.getName());
  public static final String DATA = "data";
  public static final String STATE = "state";
  public static final String LOCK = "lock";
  private static final CompletableFuture<Void> DONE = CompletableFuture.completedFuture(null);

  /** The read-only device the overlay lies over. */
  public interface Base {
    long size();

    /** Whether {@code [offset, offset+length)} reads as zeros without fetching anything. */
    boolean isZero(long offset, long length);

    /** Completes when {@code [offset, offset+length)} can be read without fetching. */
    CompletableFuture<Void> prepare(long offset, long length);

    /** Reads {@code dst.remaining()} bytes at {@code offset}; the range must have been prepared. */
    void read(long offset, ByteBuffer dst) throws IOException;
  }

  /** Where the bytes of a piece of the device come from. */
  public enum Source {
    BASE,
    DATA,
    ZERO
  }

  /** Bytes {@code [offset, offset+length)} of the device, all from one source. */
  public record Piece(long offset, long length, Source source) {
    public long end() {
      return offset + length;
    }
  }

  private final Path dir;
  private final OverlayMeta meta;
  private final Base base;
  private final Duration baseTimeout;
  private final int bs;
  private final long size;
  private final long blocks;
  private final int lockFd;
  private final GuardedFd data;
  private final ThreadLocal<ByteBuffer> blockBuffer;

  private final Object stateLock = new Object();

  /** Guarded by stateLock. */
  private final BlockStates states;

  /** Whether the states changed since the last durable state file; guarded by stateLock. */
  private boolean statesChanged;

  /** Guarded by flushLock. */
  private long generation;

  private boolean metaSynced;

  /**
   * Set after bytes reach the data file (written or punched), cleared by the flush that syncs them.
   */
  private final AtomicBoolean dataChanged = new AtomicBoolean();

  private final ReentrantLock writeLock = new ReentrantLock();
  private final ReentrantLock flushLock = new ReentrantLock();
  private volatile boolean closed;

  private Overlay(
      Path dir,
      OverlayMeta meta,
      Base base,
      Duration baseTimeout,
      int lockFd,
      GuardedFd data,
      BlockStates states,
      long generation) {
    this.dir = dir;
    this.meta = meta;
    this.base = base;
    this.baseTimeout = baseTimeout;
    this.bs = meta.blockSize();
    this.size = meta.size();
    this.blocks = meta.blocks();
    this.lockFd = lockFd;
    this.data = data;
    this.states = states;
    this.generation = generation;
    this.blockBuffer = ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(bs));
  }

  /**
   * Opens (creating it if needed) the overlay in {@code dir} over {@code base}, as {@code wanted}
   * describes it. An existing overlay must lie over the same base device; a {@code wanted} block
   * size of 0 takes the overlay's own.
   *
   * @param baseTimeout how long a partial-block write waits for base bytes before it fails
   * @throws IOException with the reason: the overlay is in use by another process, lies over
   *     another base, or its state or data file is damaged — nothing in it is changed then
   */
  public static Overlay open(Path dir, OverlayMeta wanted, Base base, Duration baseTimeout)
      throws IOException {
    if (base.size() != wanted.size()) {
      throw new IllegalArgumentException(
          "base of " + base.size() + " bytes, overlay of " + wanted.size());
    }
    Path abs = dir.toAbsolutePath().normalize();
    makeDirectory(abs);
    int lockFd = lock(abs);
    GuardedFd data = null;
    try {
      boolean fresh =
          !Files.exists(abs.resolve(OverlayMeta.FILE)) && !Files.exists(abs.resolve(STATE));
      OverlayMeta meta = meta(abs, wanted);
      BlockStates.Decoded state = fresh ? null : readState(abs, meta);
      BlockStates states = state != null ? state.states() : new BlockStates(meta.blocks());
      data = openData(abs, meta, states);
      if (!fresh) {
        removeStaleTemporaries(abs);
      }
      return new Overlay(
          abs,
          meta,
          base,
          baseTimeout,
          lockFd,
          data,
          states,
          state != null ? state.generation() : 0);
    } catch (IOException | RuntimeException e) {
      if (data != null) {
        data.close();
      }
      Posix.closeQuietly(lockFd);
      throw e;
    }
  }

  /**
   * Creates {@code dir} (mode 0700: the disk's bytes may be private) unless it exists; one mkdir
   * when it can.
   */
  private static void makeDirectory(Path dir) throws IOException {
    FileAttribute<?> mode =
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------"));
    try {
      Files.createDirectory(dir, mode);
    } catch (FileAlreadyExistsException e) {
      if (!Files.isDirectory(dir)) {
        throw new IOException(dir + " exists and is not a directory");
      }
    } catch (NoSuchFileException e) {
      Files.createDirectories(dir.getParent());
      makeDirectory(dir);
    }
  }

  /**
   * Takes the overlay's lock for this process (one export per overlay) and records our pid in it.
   */
  private static int lock(Path dir) throws IOException {
    Path p = dir.resolve(LOCK);
    int fd = Posix.open(p.toString(), Posix.O_RDWR | Posix.O_CREAT | Posix.O_CLOEXEC, 0600);
    try {
      if (!Posix.tryLockExclusive(fd, p.toString())) {
        String pid;
        try {
          pid = Files.readString(p, StandardCharsets.US_ASCII).strip();
        } catch (IOException e) {
          pid = "?";
        }
        throw new OverlayBusyException(
            "overlay "
                + dir
                + " is in use by another export (pid "
                + (pid.isEmpty() ? "?" : pid)
                + "): one export per overlay at a time");
      }
      Posix.ftruncate(fd, 0);
      ByteBuffer pid = ByteBuffer.allocateDirect(16);
      pid.put((ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.US_ASCII)).flip();
      Posix.pwrite(fd, pid, 0);
      return fd;
    } catch (IOException | RuntimeException e) {
      Posix.closeQuietly(fd);
      throw e;
    }
  }

  /** The overlay is served by another process. */
  public static final class OverlayBusyException extends IOException {
    private static final long serialVersionUID = 1L;

    OverlayBusyException(String message) {
      super(message);
    }
  }

  private static OverlayMeta meta(Path dir, OverlayMeta wanted) throws IOException {
    Path p = dir.resolve(OverlayMeta.FILE);
    if (!Files.exists(p)) {
      if (Files.exists(dir.resolve(STATE))) {
        throw new IOException(
            "overlay "
                + dir
                + " has a state file but no "
                + OverlayMeta.FILE
                + ": it cannot be told what it lies over; refusing it");
      }
      OverlayMeta m =
          wanted.blockSize() == 0 ? wanted.withBlockSize(OverlayMeta.DEFAULT_BLOCK_SIZE) : wanted;
      Path tmp =
          dir.resolve("." + OverlayMeta.FILE + ".tmp"); // we hold the lock: nobody else writes it
      Files.write(tmp, m.encode());
      Files.move(
          tmp,
          p,
          StandardCopyOption.ATOMIC_MOVE); // synced before the first state file names any block
      return m;
    }
    OverlayMeta have = OverlayMeta.read(p);
    if (!have.sameBase(wanted)) {
      throw new IOException(
          "overlay "
              + dir
              + " lies over "
              + have.baseDevice()
              + " of "
              + have.baseImage()
              + " ("
              + have.baseManifest()
              + ", "
              + have.size()
              + " bytes), not "
              + wanted.baseDevice()
              + " of "
              + wanted.baseImage()
              + " ("
              + wanted.baseManifest()
              + ", "
              + wanted.size()
              + " bytes)");
    }
    if (wanted.blockSize() != 0 && wanted.blockSize() != have.blockSize()) {
      throw new IOException(
          "overlay "
              + dir
              + " has blocks of "
              + have.blockSize()
              + " bytes, not "
              + wanted.blockSize()
              + " (leave --block-size out to use the overlay's own)");
    }
    return have;
  }

  private static BlockStates.Decoded readState(Path dir, OverlayMeta meta) throws IOException {
    Path p = dir.resolve(STATE);
    byte[] bytes;
    try {
      long n = Files.size(p);
      if (n > BlockStates.maxEncodedSize(meta.blocks())) {
        throw new IOException(
            "overlay "
                + dir
                + ": state file of "
                + n
                + " bytes is larger than any state of "
                + meta.blocks()
                + " blocks (the file is damaged); refusing it, nothing was changed");
      }
      bytes = Files.readAllBytes(p);
    } catch (NoSuchFileException e) {
      return null; // nothing was ever flushed: every block is untouched
    }
    BlockStates.Decoded d;
    try {
      d = BlockStates.decode(bytes);
    } catch (IOException e) {
      throw new IOException(
          "overlay " + dir + ": " + e.getMessage() + "; refusing it, nothing was changed", e);
    }
    if (d.blockSize() != meta.blockSize() || d.size() != meta.size()) {
      throw new IOException(
          "overlay "
              + dir
              + ": state file for "
              + d.size()
              + " bytes in blocks of "
              + d.blockSize()
              + ", but "
              + OverlayMeta.FILE
              + " says "
              + meta.size()
              + " in "
              + meta.blockSize()
              + "; refusing it, nothing was changed");
    }
    return d;
  }

  private static GuardedFd openData(Path dir, OverlayMeta meta, BlockStates states)
      throws IOException {
    Path p = dir.resolve(DATA);
    long padded = meta.blocks() * meta.blockSize();
    int fd = Posix.open(p.toString(), Posix.O_RDWR | Posix.O_CREAT | Posix.O_CLOEXEC, 0600);
    try {
      long have = Posix.lseek(fd, 0, Posix.SEEK_END);
      if (have != padded) {
        if (states.dirtyCount() > 0 && have < padded) {
          throw new IOException(
              "overlay "
                  + dir
                  + ": data file has "
                  + have
                  + " bytes, the device needs "
                  + padded
                  + " and the state names dirty blocks (the file was truncated); refusing it, nothing was changed");
        }
        Posix.ftruncate(fd, padded);
      }
      return new GuardedFd(fd, "overlay data file " + p);
    } catch (IOException | RuntimeException e) {
      Posix.closeQuietly(fd);
      throw e;
    }
  }

  /** Temporary state files of a process that died mid-flush. */
  private static void removeStaleTemporaries(Path dir) throws IOException {
    try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, "." + STATE + "-*.tmp")) {
      for (Path p : s) {
        Files.deleteIfExists(p);
      }
    }
  }

  public Path dir() {
    return dir;
  }

  public OverlayMeta meta() {
    return meta;
  }

  public int blockSize() {
    return bs;
  }

  public long size() {
    return size;
  }

  /** A copy of the block states now. */
  public BlockStates states() {
    synchronized (stateLock) {
      return states.copy();
    }
  }

  private long blockEnd(long b) {
    return Math.min((b + 1) * bs, size);
  }

  private void checkRange(long offset, long length) {
    if (offset < 0 || length < 0 || offset > size || length > size - offset) {
      throw new IllegalArgumentException(
          "range " + offset + "+" + length + " outside the device's " + size + " bytes");
    }
  }

  // ---- reads
  // ---------------------------------------------------------------------------------------------

  /** {@code [offset, offset+length)} cut into pieces by where their bytes come from, in order. */
  public List<Piece> pieces(long offset, long length) {
    checkRange(offset, length);
    List<Piece> out = new ArrayList<>();
    if (length == 0) {
      return out;
    }
    long end = offset + length;
    synchronized (stateLock) {
      states.forEachRun(
          offset / bs,
          (end - 1) / bs + 1,
          (from, to, s) -> {
            long a = Math.max(offset, from * bs);
            long z = Math.min(end, to * bs);
            Source src =
                s == BlockStates.State.DIRTY
                    ? Source.DATA
                    : s == BlockStates.State.ZERO ? Source.ZERO : Source.BASE;
            out.add(new Piece(a, z - a, src));
          });
    }
    return out;
  }

  /** Completes when every byte of the range the base serves can be read without fetching. */
  public CompletableFuture<Void> prepare(long offset, long length) {
    List<CompletableFuture<Void>> waits = new ArrayList<>();
    for (Piece p : pieces(offset, length)) {
      if (p.source() == Source.BASE) {
        CompletableFuture<Void> f = base.prepare(p.offset(), p.length());
        if (!f.isDone() || f.isCompletedExceptionally()) {
          waits.add(f);
        }
      }
    }
    return waits.isEmpty()
        ? DONE
        : waits.size() == 1
            ? waits.get(0)
            : CompletableFuture.allOf(waits.toArray(new CompletableFuture<?>[0]));
  }

  /**
   * Fills {@code dst.remaining()} bytes from {@code offset}; base pieces must have been prepared.
   */
  public void read(long offset, ByteBuffer dst) throws IOException {
    for (Piece p : pieces(offset, dst.remaining())) {
      int n = (int) p.length();
      ByteBuffer part = dst.slice(dst.position(), n);
      switch (p.source()) {
        case DATA -> readData(p.offset(), part);
        case ZERO -> ZeroCheck.fill(part, n);
        case BASE -> base.read(p.offset(), part);
        default -> throw new IllegalStateException();
      }
      dst.position(dst.position() + n);
    }
  }

  private void readData(long offset, ByteBuffer dst) throws IOException {
    data.use(
        fd -> {
          long pos = offset;
          while (dst.hasRemaining()) {
            long n = Posix.pread(fd, dst, pos);
            if (n <= 0) {
              throw new IOException("overlay data file " + dir.resolve(DATA) + " ends at " + pos);
            }
            dst.position(dst.position() + (int) n);
            pos += n;
          }
          return null;
        });
  }

  // ---- writes
  // --------------------------------------------------------------------------------------------

  /**
   * Writes {@code src.remaining()} bytes at {@code offset} (consuming src). Completes once applied:
   * at once, or after the base bytes of a partial untouched block are fetched (failing after the
   * base timeout).
   */
  public CompletableFuture<Void> write(long offset, ByteBuffer src) {
    checkRange(offset, src.remaining());
    return apply(offset, src.remaining(), () -> applyWrite(offset, src));
  }

  /** Makes {@code [offset, offset+length)} read as zeros; completes as {@link #write}. */
  public CompletableFuture<Void> zero(long offset, long length) {
    checkRange(offset, length);
    return apply(offset, length, () -> applyZero(offset, length));
  }

  private interface Apply {
    void run() throws IOException;
  }

  private CompletableFuture<Void> apply(long offset, long length, Apply work) {
    if (length == 0) {
      return DONE;
    }
    CompletableFuture<Void> ready = basePartials(offset, offset + length);
    if (ready == null) {
      try {
        work.run();
        return DONE;
      } catch (IOException e) {
        return CompletableFuture.failedFuture(e);
      }
    }
    // ready is our own future: its timeout fails only this write, and the work never runs after it
    return ready
        .orTimeout(baseTimeout.toMillis(), TimeUnit.MILLISECONDS)
        .thenRun(
            () -> {
              try {
                work.run();
              } catch (IOException e) {
                throw new CompletionException(e);
              }
            });
  }

  /**
   * The blocks {@code [offset, end)} covers in part that read the base with bytes not known to be
   * zero: their base bytes are needed to write them whole. Null when there are none; else a future
   * of our own.
   */
  private CompletableFuture<Void> basePartials(long offset, long end) {
    List<CompletableFuture<Void>> waits = null;
    long first = offset / bs;
    long last = (end - 1) / bs;
    for (long b : first == last ? new long[] {first} : new long[] {first, last}) {
      long start = b * bs;
      long bEnd = blockEnd(b);
      boolean partial = offset > start || end < bEnd;
      if (!partial
          || stateOf(b) != BlockStates.State.UNTOUCHED
          || base.isZero(start, bEnd - start)) {
        continue;
      }
      CompletableFuture<Void> f = base.prepare(start, bEnd - start);
      if (f.isDone() && !f.isCompletedExceptionally()) {
        continue;
      }
      if (waits == null) {
        waits = new ArrayList<>();
      }
      waits.add(f);
    }
    return waits == null
        ? null
        : CompletableFuture.allOf(waits.toArray(new CompletableFuture<?>[0]));
  }

  private BlockStates.State stateOf(long block) {
    synchronized (stateLock) {
      return states.state(block);
    }
  }

  private void applyWrite(long offset, ByteBuffer src) throws IOException {
    long end = offset + src.remaining();
    writeLock.lock();
    try {
      checkOpen();
      long pos = offset;
      int at = src.position();
      while (pos < end) {
        long b = pos / bs;
        long start = b * bs;
        if (pos == start && blockEnd(b) <= end) { // whole blocks from here
          long lastWhole = end == size ? blocks : end / bs; // exclusive
          long wholeEnd = blockEnd(lastWhole - 1);
          wholeBlocks(b, lastWhole, src.slice(at, (int) (wholeEnd - pos)));
          at += (int) (wholeEnd - pos);
          pos = wholeEnd;
        } else {
          long e = Math.min(end, blockEnd(b));
          partialBlock(b, (int) (pos - start), src.slice(at, (int) (e - pos)));
          at += (int) (e - pos);
          pos = e;
        }
      }
      src.position(src.limit());
    } finally {
      writeLock.unlock();
    }
  }

  /**
   * Blocks {@code [from, to)}, all of {@code bytes}: zero ones become zero, the others dirty, in
   * runs.
   */
  private void wholeBlocks(long from, long to, ByteBuffer bytes) throws IOException {
    long runStart = from;
    boolean runZero = false;
    for (long b = from; b <= to; b++) {
      boolean zero = false;
      if (b < to) {
        int off = (int) ((b - from) * bs);
        zero = ZeroCheck.isZero(bytes.slice(off, (int) (blockEnd(b) - b * bs)));
        if (b == from) {
          runZero = zero;
          continue;
        }
      }
      if (b == to || zero != runZero) {
        ByteBuffer run =
            bytes.slice((int) ((runStart - from) * bs), (int) (blockEnd(b - 1) - runStart * bs));
        if (runZero) {
          zeroWhole(runStart, b);
        } else {
          pwrite(run, runStart * bs);
          synchronized (stateLock) {
            states.markDirty(runStart, b);
            statesChanged = true;
          }
        }
        runStart = b;
        runZero = zero;
      }
    }
  }

  /**
   * Blocks {@code [from, to)} become zero; their bytes are punched out of the data file where
   * dirty.
   */
  private void zeroWhole(long from, long to) throws IOException {
    boolean dirty;
    synchronized (stateLock) {
      dirty = states.anyDirty(from, to);
    }
    if (dirty) {
      long off = from * bs;
      long len = to * bs - off;
      data.use(
          fd -> {
            Posix.fallocate(fd, Posix.FALLOC_FL_PUNCH_HOLE | Posix.FALLOC_FL_KEEP_SIZE, off, len);
            return null;
          });
      dataChanged.set(true);
    }
    synchronized (stateLock) {
      states.markZero(from, to);
      statesChanged = true;
    }
  }

  /**
   * Block {@code b} gets {@code piece} at byte {@code within}: in place when it is dirty, else
   * merged with what it reads now (zeros or the base, which was prepared) and written whole — or
   * made zero when all zero.
   */
  private void partialBlock(long b, int within, ByteBuffer piece) throws IOException {
    long start = b * bs;
    BlockStates.State s = stateOf(b);
    if (s == BlockStates.State.DIRTY) {
      pwrite(piece, start + within);
      return;
    }
    ByteBuffer blk = blockBuffer.get().clear().limit((int) (blockEnd(b) - start));
    if (s == BlockStates.State.ZERO) {
      ZeroCheck.fill(blk.duplicate(), blk.remaining());
    } else {
      base.read(start, blk.duplicate());
    }
    blk.put(within, piece, piece.position(), piece.remaining());
    if (ZeroCheck.isZero(blk)) {
      if (s != BlockStates.State.ZERO) {
        synchronized (stateLock) {
          states.markZero(b, b + 1); // not dirty before: no bytes of it in the data file matter
          statesChanged = true;
        }
      }
      return;
    }
    pwrite(blk, start);
    synchronized (stateLock) {
      states.markDirty(b, b + 1);
      statesChanged = true;
    }
  }

  private void applyZero(long offset, long length) throws IOException {
    long end = offset + length;
    writeLock.lock();
    try {
      checkOpen();
      long pos = offset;
      while (pos < end) {
        long b = pos / bs;
        long start = b * bs;
        if (pos == start && blockEnd(b) <= end) {
          long lastWhole = end == size ? blocks : end / bs;
          zeroWhole(b, lastWhole);
          pos = blockEnd(lastWhole - 1);
        } else {
          long e = Math.min(end, blockEnd(b));
          zeroPartial(b, (int) (pos - start), (int) (e - pos));
          pos = e;
        }
      }
    } finally {
      writeLock.unlock();
    }
  }

  private void zeroPartial(long b, int within, int n) throws IOException {
    BlockStates.State s = stateOf(b);
    long start = b * bs;
    if (s == BlockStates.State.ZERO
        || s == BlockStates.State.UNTOUCHED && base.isZero(start, blockEnd(b) - start)) {
      return; // reads zeros already
    }
    partialBlock(b, within, ZeroCheck.ZEROS.slice(0, n));
  }

  private void pwrite(ByteBuffer src, long offset) throws IOException {
    ByteBuffer b = src.duplicate();
    data.use(
        fd -> {
          long pos = offset;
          while (b.hasRemaining()) {
            long n = Posix.pwrite(fd, b, pos);
            b.position(b.position() + (int) n);
            pos += n;
          }
          return null;
        });
    dataChanged.set(true);
  }

  private void checkOpen() throws IOException {
    if (closed) {
      throw new IOException("overlay " + dir + " is closed");
    }
  }

  // ---- durability
  // ----------------------------------------------------------------------------------------

  /**
   * Makes every write and zeroing completed before the call durable: fdatasync of the data file,
   * then the state file replaced atomically (only when the states changed since the last one).
   * Concurrent calls are serialised.
   */
  public void flush() throws IOException {
    flushLock.lock();
    try {
      checkOpen();
      BlockStates snapshot = null;
      synchronized (stateLock) {
        if (statesChanged) {
          snapshot = states.copy();
          statesChanged = false;
        }
      }
      try {
        if (dataChanged.getAndSet(false)) {
          try {
            data.use(
                fd -> {
                  Posix.fdatasync(fd);
                  return null;
                });
          } catch (IOException e) {
            dataChanged.set(true);
            throw e;
          }
        }
        if (snapshot != null) {
          if (!metaSynced) {
            try (FileChannel ch =
                FileChannel.open(dir.resolve(OverlayMeta.FILE), StandardOpenOption.READ)) {
              ch.force(true);
            }
            metaSynced = true;
          }
          AtomicFiles.writeDurably(dir.resolve(STATE), snapshot.encode(bs, size, generation + 1));
          generation++;
        }
      } catch (IOException | RuntimeException e) {
        if (snapshot != null) {
          synchronized (stateLock) {
            statesChanged = true; // the next flush writes them
          }
        }
        if (e instanceof IOException io) {
          throw io;
        }
        throw new IOException("overlay " + dir + ": flush failed: " + e, e);
      }
    } finally {
      flushLock.unlock();
    }
  }

  /** The number of state files written by this overlay over its life (the state's generation). */
  public long generation() {
    flushLock.lock();
    try {
      return generation;
    } finally {
      flushLock.unlock();
    }
  }

  /**
   * Runs {@code work} with writes held off, after a flush: it sees the overlay exactly as the state
   * file now says (for a snapshot of a live overlay at a flush point). Reads go on meanwhile.
   */
  public <T> T atFlushPoint(FlushPointWork<T> work) throws IOException {
    writeLock.lock();
    try {
      flush();
      return work.run(states(), this::readData);
    } finally {
      writeLock.unlock();
    }
  }

  /** Work at a flush point: the states, and the data file's bytes. */
  public interface FlushPointWork<T> {
    T run(BlockStates states, DataReader data) throws IOException;
  }

  /** Reads the data file. */
  public interface DataReader {
    void read(long offset, ByteBuffer dst) throws IOException;
  }

  /**
   * An overlay no export serves, opened to be read as of its last flush (what a snapshot reads):
   * its lock is held until {@link #close}, so no export starts on it meanwhile.
   */
  public static final class Stopped implements Closeable, DataReader {
    private final Path dir;
    private final OverlayMeta meta;
    private final BlockStates states;
    private final GuardedFd data;
    private final int lockFd;

    private Stopped(Path dir, OverlayMeta meta, BlockStates states, GuardedFd data, int lockFd) {
      this.dir = dir;
      this.meta = meta;
      this.states = states;
      this.data = data;
      this.lockFd = lockFd;
    }

    public Path dir() {
      return dir;
    }

    public OverlayMeta meta() {
      return meta;
    }

    /** The states of the last flush (a copy). */
    public BlockStates states() {
      return states.copy();
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
      data.use(
          fd -> {
            long pos = offset;
            while (dst.hasRemaining()) {
              long n = Posix.pread(fd, dst, pos);
              if (n <= 0) {
                throw new IOException("overlay data file " + dir.resolve(DATA) + " ends at " + pos);
              }
              dst.position(dst.position() + (int) n);
              pos += n;
            }
            return null;
          });
    }

    @Override
    public void close() {
      data.close();
      Posix.closeQuietly(lockFd);
    }
  }

  /**
   * Opens the overlay in {@code dir} for reading while no export serves it.
   *
   * @throws IOException if it is not an overlay, is damaged, or an export serves it (then: stop it,
   *     or snapshot it through that export's control socket)
   */
  public static Stopped openStopped(Path dir) throws IOException {
    Path abs = dir.toAbsolutePath().normalize();
    if (!Files.isRegularFile(abs.resolve(OverlayMeta.FILE))) {
      throw new IOException(abs + " is not an overlay (no " + OverlayMeta.FILE + ")");
    }
    int lockFd;
    try {
      lockFd = lock(abs);
    } catch (OverlayBusyException e) {
      throw new OverlayBusyException(
          e.getMessage()
              + "; stop that export, or snapshot it through its control "
              + "socket (lazypull snapshot --control SOCKET)");
    }
    try {
      OverlayMeta meta = OverlayMeta.read(abs.resolve(OverlayMeta.FILE));
      BlockStates.Decoded state = readState(abs, meta);
      BlockStates states = state != null ? state.states() : new BlockStates(meta.blocks());
      Path p = abs.resolve(DATA);
      long padded = meta.blocks() * meta.blockSize();
      if (states.dirtyCount() > 0 && (!Files.exists(p) || Files.size(p) < padded)) {
        throw new IOException(
            "overlay " + abs + ": its data file is missing or truncated under dirty blocks");
      }
      int fd =
          states.dirtyCount() > 0
              ? Posix.open(p.toString(), Posix.O_RDONLY | Posix.O_CLOEXEC, 0)
              : -1;
      return new Stopped(abs, meta, states, new GuardedFd(fd, "overlay data file " + p), lockFd);
    } catch (IOException | RuntimeException e) {
      Posix.closeQuietly(lockFd);
      throw e;
    }
  }

  /**
   * Flushes (best effort: a failure is logged, the last flushed state stays), then releases the
   * overlay.
   */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    try {
      flush();
    } catch (IOException | UncheckedIOException e) {
      LOG.warning(
          "overlay "
              + dir
              + ": final flush failed (the last flushed state stays): "
              + e.getMessage());
    }
    writeLock.lock();
    try {
      closed = true;
    } finally {
      writeLock.unlock();
    }
    data.close();
    Posix.closeQuietly(lockFd);
  }
}

package dev.lazypull.testing;

import dev.lazypull.fscache.Devnode;
import dev.lazypull.sys.AlignedBuffers;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Posix;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingDeque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An in-process stand-in for /dev/cachefiles that behaves like the 6.10+ kernel where it matters
 * and checks every reply: backing files are real sparse files opened O_DIRECT (so misaligned writes
 * fail as they would), each OPEN gets a real anon fd, READ_COMPLETE must come through an fd of the
 * READ's own object and exactly once, and after it the kernel's re-check (SEEK_DATA at the READ's
 * offset) decides between data and EIO; a range present only up to a hole gets a follow-up READ for
 * the rest, as cachefiles sends.
 */
public final class FakeKernel implements Devnode {
  /** What a reader gets for one READ. */
  public enum Outcome {
    DATA,
    EIO
  }

  public static final class FakeObject {
    public final int objectId;
    public final String volumeKey;
    public final String cookieKey;
    public final Path file;
    public final int anonFd;
    final int msgId;
    public volatile long copenSize = Long.MIN_VALUE;
    public final CompletableFuture<Long> copen = new CompletableFuture<>();
    public volatile boolean fdClosed;

    FakeObject(int objectId, String volumeKey, String cookieKey, Path file, int anonFd, int msgId) {
      this.objectId = objectId;
      this.volumeKey = volumeKey;
      this.cookieKey = cookieKey;
      this.file = file;
      this.anonFd = anonFd;
      this.msgId = msgId;
    }
  }

  private record PendingRead(
      FakeObject object,
      long offset,
      long length,
      CompletableFuture<Outcome> result,
      long queuedAt) {
    PendingRead(FakeObject object, long offset, long length, CompletableFuture<Outcome> result) {
      this(object, offset, length, result, System.nanoTime());
    }
  }

  private final Path dir;
  private final LinkedBlockingDeque<byte[]> queue = new LinkedBlockingDeque<>();
  private final AtomicInteger nextMsgId = new AtomicInteger(1);
  private final AtomicInteger nextObjectId = new AtomicInteger(1);
  private final Map<Integer, FakeObject> objectsByFd = new ConcurrentHashMap<>();
  private final Map<Integer, FakeObject> openRequests = new ConcurrentHashMap<>();
  private final Map<Integer, PendingRead> pendingReads = new ConcurrentHashMap<>();
  private final Set<Integer> answeredReads = ConcurrentHashMap.newKeySet();
  public final List<String> commands = Collections.synchronizedList(new ArrayList<>());

  /** Cache files the fake considers in use by an object (inuse/cull answer EBUSY). */
  public final Set<Path> inUseFiles = ConcurrentHashMap.newKeySet();

  public final List<String> violations = Collections.synchronizedList(new ArrayList<>());
  public final AtomicInteger writes = new AtomicInteger();
  public final AtomicInteger readCompletes = new AtomicInteger();

  /** Longest time from queueing a READ message to its READ_COMPLETE. */
  public final AtomicLong maxReadNanos = new AtomicLong();

  /** READs the fake sent itself for the rest of a range answered with only its start present. */
  public final AtomicInteger followUps = new AtomicInteger();

  /** When true, READ_COMPLETE through any anon fd is accepted (kernels before 6.10). */
  public volatile boolean lenientReadComplete;

  public FakeKernel(Path dir) {
    this.dir = dir;
  }

  // ---- driving the daemon
  // --------------------------------------------------------------------------------

  /** Looks up a cookie: creates the backing file and anon fd, and queues an OPEN. */
  public FakeObject open(String volumeKey, String cookieKey) throws IOException {
    FakeObject o = pendingOpen(volumeKey, cookieKey);
    queue.add(Msgs.open(o.msgId, o.objectId, volumeKey, cookieKey, o.anonFd));
    return o;
  }

  /**
   * An OPEN request slot with a live anon fd but no message queued: the test sends its own bytes.
   */
  public FakeObject pendingOpen(String volumeKey, String cookieKey) throws IOException {
    int objectId = nextObjectId.getAndIncrement();
    int msgId = nextMsgId.getAndIncrement();
    Path file = dir.resolve("obj-" + objectId);
    int fd =
        Posix.open(
            file.toString(), Posix.O_RDWR | Posix.O_CREAT | Posix.O_DIRECT | Posix.O_CLOEXEC, 0600);
    FakeObject o = new FakeObject(objectId, volumeKey, cookieKey, file, fd, msgId);
    objectsByFd.put(fd, o);
    openRequests.put(msgId, o);
    return o;
  }

  public int msgIdOf(FakeObject o) {
    return o.msgId;
  }

  /**
   * Looks up a cookie whose backing file already exists (a remount, or a daemon restart): same
   * file, new object id and anon fd, as cachefiles does when the coherency data matches.
   */
  public FakeObject reopen(FakeObject old) throws IOException {
    int objectId = nextObjectId.getAndIncrement();
    int msgId = nextMsgId.getAndIncrement();
    int fd = Posix.open(old.file.toString(), Posix.O_RDWR | Posix.O_DIRECT | Posix.O_CLOEXEC, 0600);
    FakeObject o = new FakeObject(objectId, old.volumeKey, old.cookieKey, old.file, fd, msgId);
    objectsByFd.put(fd, o);
    openRequests.put(msgId, o);
    queue.add(Msgs.open(msgId, objectId, old.volumeKey, old.cookieKey, fd));
    return o;
  }

  /** Queues a READ for an object; the future completes with what the reader gets. */
  public CompletableFuture<Outcome> read(FakeObject o, long offset, long length) {
    return read(o, o.objectId, offset, length);
  }

  /**
   * Queues a READ whose header names {@code objectId} (which may not match {@code o}, to test
   * orphans).
   */
  public CompletableFuture<Outcome> read(FakeObject o, int objectId, long offset, long length) {
    int msgId = nextMsgId.getAndIncrement();
    CompletableFuture<Outcome> f = new CompletableFuture<>();
    pendingReads.put(msgId, new PendingRead(o, offset, length, f));
    queue.add(Msgs.read(msgId, objectId, offset, length));
    return f;
  }

  public void close(FakeObject o) {
    queue.add(Msgs.close(nextMsgId.getAndIncrement(), o.objectId));
  }

  /** Queues raw bytes as one message (malformed input tests). */
  public int raw(byte[] message) {
    queue.add(message);
    return message.length;
  }

  /** Registers a READ expectation for a raw message with this msg id. */
  public CompletableFuture<Outcome> expectRead(FakeObject o, int msgId, long offset, long length) {
    CompletableFuture<Outcome> f = new CompletableFuture<>();
    pendingReads.put(msgId, new PendingRead(o, offset, length, f));
    return f;
  }

  public int allocateMsgId() {
    return nextMsgId.getAndIncrement();
  }

  public boolean allAnswered() {
    return pendingReads.isEmpty();
  }

  public int pendingReads() {
    return pendingReads.size();
  }

  // ---- Devnode
  // --------------------------------------------------------------------------------------------

  @Override
  public boolean awaitRequest(int timeoutMillis) throws IOException {
    try {
      byte[] head = queue.pollFirst(timeoutMillis, TimeUnit.MILLISECONDS);
      if (head == null) {
        return false;
      }
      queue.addFirst(head);
      return true;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  @Override
  public int read(ByteBuffer buf) {
    byte[] m = queue.pollFirst();
    if (m == null) {
      return 0;
    }
    ByteBuffer b = buf.duplicate();
    b.clear();
    if (m.length > b.remaining()) {
      queue.addFirst(m);
      violations.add(
          "read buffer of " + b.remaining() + " bytes for a " + m.length + "-byte message");
      return 0;
    }
    b.put(m);
    return m.length;
  }

  @Override
  public void command(String command) throws IOException {
    commands.add(command);
    if (command.indexOf('\0') >= 0) {
      violations.add("NUL in command " + command);
      throw new ErrnoException("write", "devnode", Errno.EINVAL);
    }
    if (command.startsWith("inuse ") || command.startsWith("cull ")) {
      // like the kernel: the name is looked up in the daemon's current working directory
      String name = command.substring(command.indexOf(' ') + 1);
      Path file = Files.readSymbolicLink(Path.of("/proc/self/cwd")).resolve(name);
      if (!Files.exists(file)) {
        throw new ErrnoException("write", command, Errno.ESTALE);
      }
      if (inUseFiles.contains(file)) {
        throw new ErrnoException("write", command, Errno.EBUSY);
      }
      if (command.startsWith("cull ")) {
        Files.delete(file);
      }
      return;
    }
    if (command.startsWith("copen ")) {
      String[] parts = command.substring(6).split(",");
      int msgId = Integer.parseInt(parts[0]);
      long size = Long.parseLong(parts[1]);
      FakeObject o = openRequests.remove(msgId);
      if (o == null) {
        violations.add("copen for unknown or already answered OPEN " + msgId);
        throw new ErrnoException("write", "copen", Errno.EINVAL);
      }
      o.copenSize = size;
      if (size >= 0) {
        // cachefiles truncates a new backing file to the size rounded up to a block
        try (RandomAccessFile raf = new RandomAccessFile(o.file.toFile(), "rw")) {
          if (raf.length() < AlignedBuffers.roundUp(size, 4096)) {
            raf.setLength(AlignedBuffers.roundUp(size, 4096));
          }
        }
      }
      o.copen.complete(size);
    }
  }

  @Override
  public void readComplete(int anonFd, int msgId) throws IOException {
    readCompletes.incrementAndGet();
    FakeObject via = objectsByFd.get(anonFd);
    if (via == null || via.fdClosed) {
      violations.add(
          "READ_COMPLETE " + msgId + " through fd " + anonFd + " which is not an open anon fd");
      throw new ErrnoException("ioctl", "fd " + anonFd, Errno.EBADF);
    }
    PendingRead r = pendingReads.get(msgId);
    if (r == null) {
      if (!answeredReads.contains(msgId)) {
        violations.add("READ_COMPLETE for unknown msg " + msgId);
      } else {
        violations.add("second READ_COMPLETE for msg " + msgId);
      }
      throw new ErrnoException("ioctl", "READ_COMPLETE " + msgId, Errno.EINVAL);
    }
    if (r.object != via && !lenientReadComplete) {
      throw new ErrnoException(
          "ioctl", "READ_COMPLETE " + msgId + " via another object", Errno.EINVAL);
    }
    pendingReads.remove(msgId);
    answeredReads.add(msgId);
    maxReadNanos.accumulateAndGet(System.nanoTime() - r.queuedAt, Math::max);
    Outcome outcome;
    if (r.length == 0) {
      outcome = Outcome.DATA;
    } else {
      long data = Posix.lseek(r.object.anonFd, r.offset, Posix.SEEK_DATA);
      outcome = data == r.offset ? Outcome.DATA : Outcome.EIO;
    }
    if (outcome == Outcome.DATA && followUp(r)) {
      return;
    }
    r.result.complete(outcome);
  }

  /**
   * Data at the READ's start but a hole before its end (within the cache file): like cachefiles,
   * the reader gets the bytes up to the hole and a new READ goes out for the rest — the reader's
   * outcome is that READ's. (cachefiles_prepare_ondemand_read truncates the cached part at
   * SEEK_HOLE; erofs asks again from there.)
   */
  private boolean followUp(PendingRead r) throws ErrnoException {
    long fileEnd =
        r.object.copenSize >= 0 ? AlignedBuffers.roundUp(r.object.copenSize, 4096) : Long.MAX_VALUE;
    long end = Math.min(r.offset + r.length, fileEnd);
    long hole = Posix.lseek(r.object.anonFd, r.offset, Posix.SEEK_HOLE);
    if (hole < 0 || hole >= end) {
      return false;
    }
    followUps.incrementAndGet();
    int next = nextMsgId.getAndIncrement();
    pendingReads.put(next, new PendingRead(r.object, hole, end - hole, r.result));
    queue.add(Msgs.read(next, r.object.objectId, hole, end - hole));
    return true;
  }

  @Override
  public long pwrite(int anonFd, ByteBuffer buf, long offset) throws IOException {
    FakeObject o = objectsByFd.get(anonFd);
    if (o == null || o.fdClosed) {
      violations.add("pwrite through fd " + anonFd + " which is not an open anon fd");
      throw new ErrnoException("pwrite", "fd " + anonFd, Errno.EBADF);
    }
    if (offset % 4096 != 0 || buf.remaining() % 4096 != 0 || Posix.address(buf) % 4096 != 0) {
      violations.add("misaligned write at " + offset + " of " + buf.remaining() + " bytes");
      throw new ErrnoException("pwrite", "misaligned", Errno.ENOBUFS);
    }
    if (o.copenSize >= 0 && offset + buf.remaining() > AlignedBuffers.roundUp(o.copenSize, 4096)) {
      violations.add(
          "write past the object's end: " + offset + "+" + buf.remaining() + " > " + o.copenSize);
    }
    writes.incrementAndGet();
    return Posix.pwrite(anonFd, buf, offset);
  }

  @Override
  public long seekData(int anonFd, long offset) throws IOException {
    return Posix.lseek(anonFd, offset, Posix.SEEK_DATA);
  }

  @Override
  public long seekHole(int anonFd, long offset) throws IOException {
    return Posix.lseek(anonFd, offset, Posix.SEEK_HOLE);
  }

  @Override
  public void adoptAnonFd(int anonFd) {}

  @Override
  public void closeAnonFd(int anonFd) {
    FakeObject o = objectsByFd.get(anonFd);
    if (o == null) {
      violations.add("close of fd " + anonFd + " which is not an anon fd");
      return;
    }
    if (o.fdClosed) {
      violations.add("double close of anon fd " + anonFd);
      return;
    }
    o.fdClosed = true;
    Posix.closeQuietly(anonFd);
  }

  @Override
  public void close() {
    for (FakeObject o : objectsByFd.values()) {
      if (!o.fdClosed) {
        o.fdClosed = true;
        Posix.closeQuietly(o.anonFd);
      }
    }
  }
}

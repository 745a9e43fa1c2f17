package dev.lazypull.fanotify;

import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

/**
 * An in-process fanotify group for unit tests of the front end: {@link #access} plays a reader of a
 * marked file, events travel as the kernel's bytes (so the real decoder reads them), fills land in
 * the real file, and every misuse the kernel would punish — an answer to no event, a second answer,
 * a fill or close of an unknown fd, closing an fd before answering it — is recorded in {@link
 * #violations()}. Closing the group allows what is pending, like the kernel.
 */
public final class FakeFanotifyGroup implements FanotifyGroup {
  private record Pending(Path file, CompletableFuture<Integer> answer) {}

  private final Set<Path> marks = new HashSet<>();
  private final ArrayDeque<byte[]> queue = new ArrayDeque<>();
  private final Map<Integer, Pending> open = new HashMap<>();
  private final Map<Integer, Pending> unanswered = new HashMap<>();
  private final List<String> violations = new ArrayList<>();
  private int nextFd = 1000;
  private boolean closed;

  /**
   * A reader of {@code file} touching [offset, offset+count): when the file is marked an event is
   * queued and the future completes with the answer; otherwise it completes with ALLOW at once.
   */
  public synchronized CompletableFuture<Integer> access(
      Path file, long offset, long count, int pid) {
    if (closed || !marks.contains(file.toAbsolutePath())) {
      return CompletableFuture.completedFuture(FanotifyResponse.ALLOW);
    }
    int fd = nextFd++;
    Pending p = new Pending(file.toAbsolutePath(), new CompletableFuture<>());
    open.put(fd, p);
    unanswered.put(fd, p);
    queue.add(new EventBytes().preAccess(fd, pid, offset, count).bytes());
    notifyAll();
    return p.answer;
  }

  /**
   * Queues raw bytes as one read's worth (for malformed events); {@code fd}, if not negative,
   * becomes open.
   */
  public synchronized void inject(byte[] raw, int fd, Path file) {
    if (fd >= 0) {
      Pending p = new Pending(file.toAbsolutePath(), new CompletableFuture<>());
      open.put(fd, p);
      unanswered.put(fd, p);
    }
    queue.add(raw);
    notifyAll();
  }

  /** Whether {@code file} carries the group's mark. */
  public synchronized boolean isMarked(Path file) {
    return marks.contains(file.toAbsolutePath());
  }

  public synchronized List<String> violations() {
    return List.copyOf(violations);
  }

  /** Event fds not closed yet. */
  public synchronized Set<Integer> openFds() {
    return Set.copyOf(open.keySet());
  }

  @Override
  public synchronized FileKey identify(int eventFd) throws IOException {
    Pending p = open.get(eventFd);
    if (p == null) {
      violations.add("identify of unknown fd " + eventFd);
      throw new ErrnoException("statx", "fd " + eventFd, Errno.EBADF);
    }
    return FileKey.of(p.file());
  }

  @Override
  public synchronized void mark(Path file) {
    marks.add(file.toAbsolutePath());
  }

  @Override
  public synchronized void unmark(Path file) throws IOException {
    if (!marks.remove(file.toAbsolutePath())) {
      throw new ErrnoException("fanotify_mark", file.toString(), Errno.ENOENT);
    }
  }

  @Override
  public synchronized void flushMarks() {
    marks.clear();
  }

  @Override
  public synchronized boolean awaitEvents(int timeoutMillis) throws IOException {
    long end = System.nanoTime() + timeoutMillis * 1_000_000L;
    while (queue.isEmpty() && !closed) {
      long left = (end - System.nanoTime()) / 1_000_000L;
      if (left <= 0) {
        return false;
      }
      try {
        wait(left);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted", e);
      }
    }
    if (closed) {
      throw new IOException("fake fanotify group is closed");
    }
    return true;
  }

  @Override
  public synchronized int read(ByteBuffer buf) throws IOException {
    if (closed) {
      throw new ErrnoException("read", "fake fanotify group", Errno.EBADF);
    }
    ByteBuffer b = buf.duplicate().clear();
    int n = 0;
    while (!queue.isEmpty() && queue.peek().length <= b.remaining()) {
      byte[] e = queue.poll();
      b.put(e);
      n += e.length;
    }
    if (n == 0 && !queue.isEmpty()) {
      throw new ErrnoException(
          "read", "fake fanotify group: buffer smaller than the next event", Errno.EINVAL);
    }
    return n;
  }

  @Override
  public synchronized void respond(int eventFd, int response) throws IOException {
    if (!FanotifyResponse.isValid(response)) {
      violations.add("invalid response 0x" + Integer.toHexString(response) + " to fd " + eventFd);
      throw new ErrnoException("write", "fake fanotify group", Errno.EINVAL);
    }
    Pending p = unanswered.remove(eventFd);
    if (p == null) {
      violations.add(
          "answer "
              + FanotifyResponse.describe(response)
              + " to fd "
              + eventFd
              + ", which has no event");
      throw new ErrnoException("write", "fake fanotify group", Errno.ENOENT);
    }
    p.answer.complete(response);
  }

  @Override
  public synchronized boolean respondIfPending(int eventFd, int response) throws IOException {
    if (!unanswered.containsKey(eventFd)) {
      return false;
    }
    respond(eventFd, response);
    return true;
  }

  @Override
  public long pwrite(int eventFd, ByteBuffer buf, long offset) throws IOException {
    Pending p;
    synchronized (this) {
      p = open.get(eventFd);
      if (p == null) {
        violations.add("pwrite through fd " + eventFd + ", which is not an open event fd");
        throw new ErrnoException("pwrite", "fd " + eventFd, Errno.EBADF);
      }
    }
    try (FileChannel ch = FileChannel.open(p.file, StandardOpenOption.WRITE)) {
      long n = 0;
      while (buf.hasRemaining()) {
        n += ch.write(buf, offset + n);
      }
      return n;
    }
  }

  @Override
  public synchronized void closeEventFd(int eventFd) {
    if (open.remove(eventFd) == null) {
      violations.add("close of fd " + eventFd + ", which is not an open event fd");
    } else if (unanswered.containsKey(eventFd)) {
      violations.add("fd " + eventFd + " closed before its answer");
    }
  }

  @Override
  public synchronized void close() {
    closed = true;
    for (Pending p : unanswered.values()) {
      p.answer.complete(FanotifyResponse.ALLOW); // the kernel's fail-open
    }
    unanswered.clear();
    notifyAll();
  }
}

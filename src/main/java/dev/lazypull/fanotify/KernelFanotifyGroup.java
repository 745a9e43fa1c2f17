package dev.lazypull.fanotify;

import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Fanotify;
import dev.lazypull.sys.GuardedFd;
import dev.lazypull.sys.Posix;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

/**
 * {@link FanotifyGroup} over a real fanotify group through JNA. The group is non-blocking (reads
 * return 0 when nothing is pending; wait in {@link #awaitEvents}), its queue unlimited (a full
 * queue would let permission events pass unseen), and its event fds are opened read-write and
 * close-on-exec. Needs CAP_SYS_ADMIN.
 *
 * <p>Thread-safe: the group descriptor is guarded so that {@link #close} never races a call still
 * using the number; event fds belong to the caller.
 */
public final class KernelFanotifyGroup implements FanotifyGroup {
  /** fanotify_init flags of a group this class creates. */
  public static final int INIT_FLAGS =
      Fanotify.FAN_CLASS_PRE_CONTENT
          | Fanotify.FAN_CLOEXEC
          | Fanotify.FAN_NONBLOCK
          | Fanotify.FAN_UNLIMITED_QUEUE;

  /** Open flags of the event fds: read-write, to fill ranges through them. */
  public static final int EVENT_F_FLAGS = Posix.O_RDWR | Posix.O_CLOEXEC;

  private static final ThreadLocal<ByteBuffer> RESPONSE =
      ThreadLocal.withInitial(
          () -> ByteBuffer.allocateDirect(FanotifyResponse.SIZE).order(ByteOrder.nativeOrder()));

  private final int fd;
  private final GuardedFd guarded;
  private final ByteBuffer pollScratch = ByteBuffer.allocateDirect(8);

  private KernelFanotifyGroup(int fd) {
    this.fd = fd;
    this.guarded = new GuardedFd(fd, "fanotify group fd " + fd);
  }

  /** Creates a new group ({@link #INIT_FLAGS}, {@link #EVENT_F_FLAGS}). */
  public static KernelFanotifyGroup open() throws ErrnoException {
    return new KernelFanotifyGroup(Fanotify.init(INIT_FLAGS, EVENT_F_FLAGS));
  }

  /**
   * Wraps a group descriptor created earlier with {@link #INIT_FLAGS} (handed back by systemd's fd
   * store or a keeper process after a restart). Its marks and pending events come with it; the
   * descriptor is made close-on-exec (passed descriptors arrive without it, and a child holding the
   * group would keep it alive).
   */
  public static KernelFanotifyGroup adopt(int fd) throws ErrnoException {
    Posix.setCloseOnExec(fd);
    return new KernelFanotifyGroup(fd);
  }

  /** The group descriptor (to hand to an fd store); stays owned by this object. */
  public int fd() {
    return fd;
  }

  @Override
  public void mark(Path file) throws IOException {
    String path = file.toAbsolutePath().toString();
    guarded.use(
        g -> {
          Fanotify.markAdd(g, Fanotify.FAN_PRE_ACCESS, path);
          return null;
        });
  }

  @Override
  public void unmark(Path file) throws IOException {
    String path = file.toAbsolutePath().toString();
    guarded.use(
        g -> {
          Fanotify.markRemove(g, Fanotify.FAN_PRE_ACCESS, path);
          return null;
        });
  }

  @Override
  public void flushMarks() throws IOException {
    guarded.use(
        g -> {
          Fanotify.flushInodeMarks(g);
          return null;
        });
  }

  @Override
  public boolean awaitEvents(int timeoutMillis) throws IOException {
    return guarded.use(
        g -> {
          synchronized (pollScratch) {
            int revents = Posix.pollOne(g, Posix.POLLIN, timeoutMillis, pollScratch);
            if ((revents & (Posix.POLLERR | Posix.POLLNVAL)) != 0) {
              throw new ErrnoException(
                  "poll", "fanotify group fd " + g + " reported an error", Errno.EIO);
            }
            return (revents & Posix.POLLIN) != 0;
          }
        });
  }

  @Override
  public int read(ByteBuffer buf) throws IOException {
    ByteBuffer b = buf.duplicate();
    b.clear();
    return guarded.use(g -> Posix.read(g, b));
  }

  @Override
  public void respond(int eventFd, int response) throws IOException {
    int errno = write(eventFd, response);
    if (errno != 0) {
      throw new ErrnoException(
          "fanotify response " + FanotifyResponse.describe(response) + " to",
          "event fd " + eventFd,
          errno);
    }
  }

  @Override
  public boolean respondIfPending(int eventFd, int response) throws IOException {
    int errno = write(eventFd, response);
    if (errno == 0) {
      return true;
    }
    if (errno == Errno.ENOENT) {
      return false;
    }
    throw new ErrnoException(
        "fanotify response " + FanotifyResponse.describe(response) + " to",
        "event fd " + eventFd,
        errno);
  }

  /** Writes the response; 0 or the errno. */
  private int write(int eventFd, int response) throws IOException {
    ByteBuffer r = RESPONSE.get();
    r.clear();
    FanotifyResponse.encode(r, eventFd, response).flip();
    return guarded.use(g -> Fanotify.writeResponse(g, r));
  }

  @Override
  public long pwrite(int eventFd, ByteBuffer buf, long offset) throws IOException {
    return Posix.pwrite(eventFd, buf, offset);
  }

  @Override
  public void closeEventFd(int eventFd) {
    Posix.closeQuietly(eventFd);
  }

  @Override
  public void close() {
    guarded.close();
  }
}

package dev.lazypull.fscache;

import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Posix;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** {@link Devnode} over the real {@code /dev/cachefiles} through JNA. */
public final class KernelDevnode implements Devnode {
  public static final String PATH = "/dev/cachefiles";

  /** {@code _IOW(0x98, 1, int)}: CACHEFILES_IOC_READ_COMPLETE; the msg_id is passed by value. */
  public static final long IOC_READ_COMPLETE = 0x40049801L;

  private final int fd;
  private final ByteBuffer pollScratch = ByteBuffer.allocateDirect(8);
  private final ByteBuffer commandBuf = ByteBuffer.allocateDirect(DevnodeCommand.MAX_LENGTH + 1);
  private volatile boolean closed;

  private KernelDevnode(int fd) {
    this.fd = fd;
  }

  /** Opens the devnode. Only one process may hold it (EBUSY otherwise); needs CAP_SYS_ADMIN. */
  public static KernelDevnode open(String path) throws ErrnoException {
    return new KernelDevnode(Posix.open(path, Posix.O_RDWR | Posix.O_CLOEXEC, 0));
  }

  /** Wraps an already-bound devnode fd (handed over by a supervisor or systemd's fd store). */
  public static KernelDevnode adopt(int fd) {
    return new KernelDevnode(fd);
  }

  public int fd() {
    return fd;
  }

  @Override
  public boolean awaitRequest(int timeoutMillis) throws IOException {
    int revents = Posix.pollOne(fd, Posix.POLLIN, timeoutMillis, pollScratch);
    if ((revents & (Posix.POLLERR | Posix.POLLNVAL)) != 0) {
      throw new ErrnoException("poll", PATH + " reported an error", Errno.EIO);
    }
    return (revents & Posix.POLLIN) != 0;
  }

  @Override
  public int read(ByteBuffer buf) throws IOException {
    ByteBuffer b = buf.duplicate();
    b.clear();
    return Posix.read(fd, b);
  }

  @Override
  public synchronized void command(String command) throws IOException {
    byte[] bytes = command.getBytes(StandardCharsets.UTF_8);
    commandBuf.clear();
    commandBuf.put(bytes).flip();
    long n;
    try {
      n = Posix.write(fd, commandBuf);
    } catch (ErrnoException e) {
      throw new ErrnoException("write '" + command + "' to", PATH, e.errno());
    }
    if (n != bytes.length) {
      throw new IOException(
          "short write of '" + command + "' to " + PATH + ": " + n + " of " + bytes.length);
    }
  }

  @Override
  public void readComplete(int anonFd, int msgId) throws IOException {
    Posix.ioctl(anonFd, IOC_READ_COMPLETE, Integer.toUnsignedLong(msgId));
  }

  @Override
  public long pwrite(int anonFd, ByteBuffer buf, long offset) throws IOException {
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
  public void adoptAnonFd(int anonFd) throws IOException {
    Posix.setCloseOnExec(anonFd);
  }

  @Override
  public void closeAnonFd(int anonFd) {
    Posix.closeQuietly(anonFd);
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      Posix.closeQuietly(fd);
    }
  }
}

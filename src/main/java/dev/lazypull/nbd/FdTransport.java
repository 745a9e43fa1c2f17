package dev.lazypull.nbd;

import dev.lazypull.sys.Posix;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A raw socket descriptor (our end of a socketpair handed to the kernel's nbd driver), through JNA. Buffers
 * must be direct. Closing shuts the socket down first, which wakes a blocked reader, then closes the descriptor
 * once no call is using it, so the number is never reused under a reader or writer.
 */
final class FdTransport implements NbdTransport {
  private final int fd;
  private final String peer;
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private boolean closed;

  FdTransport(int fd, String peer) {
    this.fd = fd;
    this.peer = peer;
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    lock.readLock().lock();
    try {
      if (closed) {
        return -1;
      }
      int n = Posix.read(fd, dst);
      if (n == 0 && dst.hasRemaining()) {
        return -1; // blocking socket: 0 is the end of the stream
      }
      dst.position(dst.position() + n);
      return n;
    } finally {
      lock.readLock().unlock();
    }
  }

  @Override
  public void write(ByteBuffer... srcs) throws IOException {
    lock.readLock().lock();
    try {
      if (closed) {
        throw new IOException(peer + " is closed");
      }
      for (ByteBuffer src : srcs) {
        // JNA needs native memory; heap buffers here are small headers and error replies.
        ByteBuffer b = src.isDirect() ? src : ByteBuffer.allocateDirect(src.remaining()).put(src.duplicate()).flip();
        while (b.hasRemaining()) {
          long n = Posix.write(fd, b);
          if (n <= 0) {
            throw new IOException("write to " + peer + " made no progress");
          }
          b.position(b.position() + (int) n);
        }
        src.position(src.limit());
      }
    } finally {
      lock.readLock().unlock();
    }
  }

  @Override
  public void close() {
    Posix.shutdownQuietly(fd);
    lock.writeLock().lock();
    try {
      if (!closed) {
        closed = true;
        Posix.closeQuietly(fd);
      }
    } finally {
      lock.writeLock().unlock();
    }
  }

  @Override
  public String peer() {
    return peer;
  }
}

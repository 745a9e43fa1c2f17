package dev.lazypull.nbd.server;

import dev.lazypull.sys.GuardedFd;
import dev.lazypull.sys.Posix;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A raw socket descriptor (our end of a socketpair handed to the kernel's nbd driver), through JNA.
 * Closing shuts the socket down first, which wakes a blocked reader, then closes the descriptor
 * once no call is using it ({@link GuardedFd}).
 */
final class FdTransport implements NbdTransport {
  private final GuardedFd fd;
  private final String peer;

  FdTransport(int fd, String peer) {
    this.fd = new GuardedFd(fd, peer);
    this.peer = peer;
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    try {
      return fd.use(
          f -> {
            int n = Posix.read(f, dst);
            if (n == 0 && dst.hasRemaining()) {
              return -1; // blocking socket: 0 is the end of the stream
            }
            dst.position(dst.position() + n);
            return n;
          });
    } catch (GuardedFd.ClosedException e) {
      return -1;
    }
  }

  @Override
  public void write(ByteBuffer... srcs) throws IOException {
    fd.use(
        f -> {
          for (ByteBuffer src : srcs) {
            // JNA needs native memory; heap buffers here are small headers and error replies.
            ByteBuffer b =
                src.isDirect()
                    ? src
                    : ByteBuffer.allocateDirect(src.remaining()).put(src.duplicate()).flip();
            while (b.hasRemaining()) {
              long n = Posix.write(f, b);
              if (n <= 0) {
                throw new IOException("write to " + peer + " made no progress");
              }
              b.position(b.position() + (int) n);
            }
            src.position(src.limit());
          }
          return null;
        });
  }

  @Override
  public void close() {
    try {
      fd.use(
          f -> { // wakes a reader blocked in read(2), which holds the descriptor open
            Posix.shutdownQuietly(f);
            return null;
          });
    } catch (IOException e) {
      return; // closed already
    }
    fd.close();
  }

  @Override
  public String peer() {
    return peer;
  }
}

package dev.lazypull.fscache;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The kernel side of the on-demand protocol: the {@code /dev/cachefiles} channel plus the
 * operations on the anonymous fds the kernel hands out with each OPEN. Production code uses {@link
 * KernelDevnode}; tests use an in-process fake kernel that writes real sparse files and checks
 * every reply.
 */
public interface Devnode extends Closeable {
  /** Waits up to {@code timeoutMillis} until a request is pending; false on timeout. */
  boolean awaitRequest(int timeoutMillis) throws IOException;

  /**
   * Reads one pending message into {@code buf} (capacity at least {@link
   * CachefilesDecoder#MSG_MAX_SIZE}), starting at position 0. Returns its length, or 0 when nothing
   * is pending.
   */
  int read(ByteBuffer buf) throws IOException;

  /** Writes one command built by {@link DevnodeCommand}. */
  void command(String command) throws IOException;

  /**
   * Completes READ {@code msgId} ({@code CACHEFILES_IOC_READ_COMPLETE}) through an anon fd of its
   * object.
   */
  void readComplete(int anonFd, int msgId) throws IOException;

  /**
   * Writes {@code buf}'s remaining bytes at {@code offset} through an anon fd. Offset, length and
   * buffer address must be 4096-aligned (direct I/O on the backing file). Returns the bytes
   * written, which may exceed the request on kernels that round the reported length up to a page.
   */
  long pwrite(int anonFd, ByteBuffer buf, long offset) throws IOException;

  /** SEEK_DATA on an anon fd: first data offset at or after {@code offset}, or -1 if none. */
  long seekData(int anonFd, long offset) throws IOException;

  /** SEEK_HOLE on an anon fd: first hole offset at or after {@code offset}, or -1 past the end. */
  long seekHole(int anonFd, long offset) throws IOException;

  /** Prepares a freshly received anon fd (close-on-exec: the kernel installs it without). */
  void adoptAnonFd(int anonFd) throws IOException;

  /** Closes an anon fd; the kernel marks the object closed when its last fd goes. */
  void closeAnonFd(int anonFd);
}

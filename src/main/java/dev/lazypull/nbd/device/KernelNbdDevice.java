package dev.lazypull.nbd.device;

import dev.lazypull.nbd.server.NbdServer;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Posix;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * Attaches an export to the kernel's nbd driver ({@code /dev/nbdN}) through the classic ioctls, as
 * nbd-client and nydusd do: block size and count, the export's flags (read-only or writable, flush,
 * multi-connection), one socketpair per connection whose other end our server serves in
 * transmission mode, then {@code NBD_DO_IT}, which blocks (on its own thread) until the device is
 * disconnected. {@link #close} disconnects the device.
 */
public final class KernelNbdDevice implements Closeable {
  private static final Logger LOG = Logger.getLogger(KernelNbdDevice.class.getName());
  // include/uapi/linux/nbd.h: _IO(0xab, n)
  static final long NBD_SET_SOCK = 0xab00;
  static final long NBD_SET_BLKSIZE = 0xab01;
  static final long NBD_DO_IT = 0xab03;
  static final long NBD_CLEAR_SOCK = 0xab04;
  static final long NBD_CLEAR_QUE = 0xab05;
  static final long NBD_SET_SIZE_BLOCKS = 0xab07;
  static final long NBD_DISCONNECT = 0xab08;
  static final long NBD_SET_TIMEOUT = 0xab09;
  static final long NBD_SET_FLAGS = 0xab0a;

  private final String path;
  private final int fd;
  private final CompletableFuture<Void> running = new CompletableFuture<>();
  private volatile boolean closing;
  private boolean closed;

  private KernelNbdDevice(String path, int fd) {
    this.path = path;
    this.fd = fd;
  }

  /**
   * Configures {@code devicePath} for {@code server}'s export and starts it. Returns once the
   * kernel has the device running (its size is visible in sysfs).
   *
   * @param connections sockets (kernel hardware queues) to give the device
   * @param kernelTimeout after this long without a reply the kernel fails the request and drops the
   *     socket; keep it above the server's read deadline, which answers slow fetches with EIO first
   */
  public static KernelNbdDevice attach(
      String devicePath, NbdServer server, int connections, Duration kernelTimeout)
      throws IOException {
    checkAvailable(devicePath);
    long size = server.export().size();
    int blockSize = size % 4096 == 0 ? 4096 : 512;
    if (size % blockSize != 0) {
      LOG.warning(
          devicePath
              + ": the export's last "
              + (size % blockSize)
              + " bytes are past the last whole "
              + "512-byte sector and are not visible through the block device");
    }
    int fd;
    try {
      fd = Posix.open(devicePath, Posix.O_RDWR | Posix.O_CLOEXEC, 0);
    } catch (ErrnoException e) {
      throw new IOException(
          "cannot open "
              + devicePath
              + ": "
              + Errno.describe(e.errno())
              + (e.errno() == Errno.ENOENT ? " (load the nbd module: modprobe nbd)" : ""),
          e);
    }
    KernelNbdDevice dev = new KernelNbdDevice(devicePath, fd);
    try {
      dev.configure(server, size / blockSize, blockSize, connections, kernelTimeout);
    } catch (IOException | RuntimeException e) {
      Posix.closeQuietly(fd);
      throw e;
    }
    return dev;
  }

  private void configure(
      NbdServer server, long blocks, int blockSize, int connections, Duration timeout)
      throws IOException {
    try {
      Posix.ioctl(fd, NBD_SET_BLKSIZE, blockSize);
      Posix.ioctl(fd, NBD_SET_SIZE_BLOCKS, blocks);
      Posix.ioctl(fd, NBD_SET_TIMEOUT, Math.max(1, timeout.toSeconds()));
      // The kernel client never negotiates structured replies: no DF. Read-only, or
      // FUA/TRIM/WRITE_ZEROES.
      Posix.ioctl(fd, NBD_SET_FLAGS, server.export().transmissionFlags(false));
    } catch (ErrnoException e) {
      throw new IOException(
          path
              + ": "
              + e.getMessage()
              + (e.errno() == Errno.EBUSY
                  ? " (the device is in use: another nbd client is attached)"
                  : ""),
          e);
    }
    for (int i = 0; i < connections; i++) {
      int[] pair = Posix.socketpair();
      try {
        Posix.ioctl(fd, NBD_SET_SOCK, pair[0]);
      } catch (ErrnoException e) {
        Posix.closeQuietly(pair[0]);
        Posix.closeQuietly(pair[1]);
        if (i > 0) {
          clearQuietly();
        }
        throw new IOException(
            path
                + ": NBD_SET_SOCK: "
                + Errno.describe(e.errno())
                + (e.errno() == Errno.EBUSY
                    ? " (the device is in use: another nbd client is attached)"
                    : ""),
            e);
      }
      // The kernel holds its own reference now; ours would keep the socket alive after a
      // disconnect.
      Posix.closeQuietly(pair[0]);
      server.serveKernelSocket(pair[1], path + " socket " + i);
    }
    Thread doIt = new Thread(this::doIt, "lazypull-nbd-do-it");
    doIt.setDaemon(true);
    doIt.start();
    waitUntilRunning();
  }

  private void doIt() {
    try {
      Posix.ioctl(fd, NBD_DO_IT, 0); // blocks while the device is connected
      running.complete(null);
    } catch (ErrnoException e) {
      if (closing) {
        running.complete(
            null); // a requested disconnect may end DO_IT with an error on some kernels
      } else {
        running.completeExceptionally(new IOException(path + ": NBD_DO_IT: " + e.getMessage(), e));
      }
    } finally {
      clearQuietly();
    }
  }

  private void clearQuietly() {
    try {
      Posix.ioctl(fd, NBD_CLEAR_QUE, 0);
    } catch (ErrnoException e) {
      LOG.fine(path + ": NBD_CLEAR_QUE: " + e.getMessage()); // removed in newer kernels; harmless
    }
    try {
      Posix.ioctl(fd, NBD_CLEAR_SOCK, 0);
    } catch (ErrnoException e) {
      LOG.fine(path + ": NBD_CLEAR_SOCK: " + e.getMessage());
    }
  }

  /**
   * Fails if {@code devicePath} is not an nbd device or is running already: configuring a device
   * someone else runs would resize it under them, so this is checked before any ioctl.
   */
  public static void checkAvailable(String devicePath) throws IOException {
    if (!Files.exists(Path.of(devicePath))) {
      throw new IOException(devicePath + " does not exist (load the nbd module: modprobe nbd)");
    }
    Path pid = sysfs(devicePath, "pid");
    if (Files.exists(pid)) {
      throw new IOException(
          devicePath
              + " is in use: another nbd client (pid "
              + Files.readString(pid).strip()
              + ") is attached");
    }
  }

  private static Path sysfs(String devicePath, String attribute) {
    return Path.of("/sys/block", Path.of(devicePath).getFileName().toString(), attribute);
  }

  /** The device is live once sysfs shows the serving pid (set by NBD_DO_IT before it blocks). */
  private void waitUntilRunning() throws IOException {
    Path pid = sysfs(path, "pid");
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (System.nanoTime() < until) {
      if (running.isDone()) {
        running.join(); // throws what DO_IT failed with
        throw new IOException(path + ": the kernel ended the device right after starting it");
      }
      if (Files.exists(pid)) {
        return;
      }
      try {
        Thread.sleep(10);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted while starting " + path);
      }
    }
    throw new IOException(path + " did not start within 10 s");
  }

  public String path() {
    return path;
  }

  /**
   * Completes when the device is disconnected (by {@link #close}, {@code nbd-client -d}, or a
   * failure).
   */
  public CompletableFuture<Void> disconnected() {
    return running;
  }

  /**
   * Disconnects the device (the kernel sends DISC on its sockets) and waits up to 10 s for it to
   * stop.
   */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    closing = true;
    if (!running.isDone()) {
      try {
        Posix.ioctl(fd, NBD_DISCONNECT, 0);
      } catch (ErrnoException e) {
        LOG.warning(path + ": NBD_DISCONNECT: " + e.getMessage());
      }
      try {
        running.get(10, TimeUnit.SECONDS);
      } catch (Exception e) {
        LOG.warning(path + ": did not disconnect cleanly: " + e.getMessage());
      }
    }
    if (running.isDone()) {
      Posix.closeQuietly(fd); // DO_IT has returned: nobody else uses the descriptor
    }
  }
}

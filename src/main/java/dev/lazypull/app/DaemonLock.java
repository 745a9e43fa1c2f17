package dev.lazypull.app;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * One daemon per run directory: a lock on {@code RUNDIR/daemon.lock} held for the daemon's life
 * (the kernel drops it when the process ends, however it ends). A second daemon started by mistake
 * must not touch the first one's fanotify group: taking it over from the keeper, it would fail the
 * first one's reads in flight, and its own failed start would unmount the first one's mounts and
 * end the keeper that guards them.
 */
final class DaemonLock implements AutoCloseable {
  private final FileChannel channel;
  private final FileLock lock;

  private DaemonLock(FileChannel channel, FileLock lock) {
    this.channel = channel;
    this.lock = lock;
  }

  /**
   * Takes the lock of {@code runDir}.
   *
   * @throws IOException naming the holder's pid when another live process holds it
   */
  static DaemonLock acquire(Path runDir) throws IOException {
    Files.createDirectories(runDir);
    Path file = runDir.resolve("daemon.lock");
    FileChannel ch =
        FileChannel.open(
            file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
    try {
      FileLock l = ch.tryLock();
      if (l == null) {
        String holder = new String(Files.readAllBytes(file), StandardCharsets.US_ASCII).trim();
        throw new IOException(
            "another lazypull daemon"
                + (holder.isEmpty() ? "" : " (pid " + holder + ")")
                + " is running with run directory "
                + runDir
                + " (the control socket's directory); stop it first");
      }
      ch.truncate(0);
      ch.write(
          ByteBuffer.wrap(
              (ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.US_ASCII)),
          0);
      return new DaemonLock(ch, l);
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  @Override
  public void close() {
    try {
      lock.release();
      channel.close();
    } catch (IOException e) {
      // the process ends soon anyway, and the kernel drops the lock then
    }
  }
}

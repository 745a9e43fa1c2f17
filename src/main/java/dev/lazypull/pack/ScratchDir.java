package dev.lazypull.pack;

import dev.lazypull.sys.DaemonThreads;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A private directory for one command's large temporary files (staged blobs, downloaded layers),
 * with the background workers that fill or drain it: {@link #close} stops the workers first (no
 * file appears after it) and then deletes everything.
 */
final class ScratchDir implements Closeable {
  private final Path dir;
  private final ExecutorService workers;
  private final AtomicInteger count = new AtomicInteger();

  /** Creates {@code root/<prefix>NNN}; {@code workers} is shut down by {@link #close}. */
  ScratchDir(Path root, String prefix, ExecutorService workers) throws IOException {
    Files.createDirectories(root);
    this.dir = Files.createTempDirectory(root, prefix);
    this.workers = workers;
  }

  ExecutorService workers() {
    return workers;
  }

  /** A new file name in the directory, unique for this instance ({@code hint-N}); not created. */
  Path newPath(String hint) {
    return dir.resolve(hint + "-" + count.incrementAndGet());
  }

  @Override
  public void close() throws IOException {
    workers.shutdownNow();
    boolean stopped = false;
    try {
      stopped = workers.awaitTermination(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    for (int attempt = 0;
        ;
        attempt++) { // a worker that did not stop in time may still create a file
      try (var files = Files.list(dir)) {
        for (Path p : files.toList()) {
          Files.deleteIfExists(p);
        }
      }
      try {
        Files.deleteIfExists(dir);
        return;
      } catch (DirectoryNotEmptyException e) {
        if (attempt >= 2) {
          throw new IOException(
              "scratch dir "
                  + dir
                  + " left behind: "
                  + (stopped ? "" : "a worker did not stop; ")
                  + e.getMessage(),
              e);
        }
      }
    }
  }

  /** A pool of daemon threads named {@code name-N}. */
  static ExecutorService pool(int threads, String name) {
    return Executors.newFixedThreadPool(threads, DaemonThreads.numbered(name + "-"));
  }
}

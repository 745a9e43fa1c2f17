package dev.lazypull.cli;

import dev.lazypull.pack.Progress;
import java.io.PrintStream;
import java.util.Locale;

/**
 * Shows a build's progress on stderr: on a terminal ({@code System.console() != null}) one live
 * line redrawn a few times a second plus stage lines; otherwise (logs, pipes, CI) stage lines only.
 */
final class ProgressDisplay implements AutoCloseable {
  private final PrintStream err = System.err;
  private final boolean live;
  private final Progress progress;
  private final Thread ticker;
  private volatile boolean running = true;
  private final long start = System.nanoTime();

  ProgressDisplay() {
    this.live = System.console() != null;
    this.progress = new Progress(this::stage);
    if (live) {
      ticker = new Thread(this::tick, "lazypull-progress");
      ticker.setDaemon(true);
      ticker.start();
    } else {
      ticker = null;
    }
  }

  Progress progress() {
    return progress;
  }

  private synchronized void stage(String message) {
    if (live) {
      err.print("\r\033[K");
    }
    err.printf(Locale.ROOT, "[%6.1fs] %s%n", (System.nanoTime() - start) / 1e9, message);
    err.flush();
  }

  private void tick() {
    while (running) {
      synchronized (this) {
        err.print("\r\033[K" + line());
        err.flush();
      }
      try {
        Thread.sleep(250);
      } catch (InterruptedException e) {
        return;
      }
    }
  }

  private String line() {
    long pushed = progress.bytesPushed.get();
    return String.format(
        Locale.ROOT,
        "%d entries, %s hashed, %s stored in %d chunks (%d deduplicated)%s",
        progress.files.get(),
        Units.human(progress.bytesHashed.get()),
        Units.human(progress.bytesStored.get()),
        progress.chunksStored.get(),
        progress.chunksDeduplicated.get(),
        pushed > 0 ? ", " + Units.human(pushed) + " pushed" : "");
  }

  @Override
  public void close() {
    running = false;
    if (ticker != null) {
      ticker.interrupt();
      try {
        ticker.join(1000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      synchronized (this) {
        err.print("\r\033[K");
      }
    }
    stage(line());
  }
}

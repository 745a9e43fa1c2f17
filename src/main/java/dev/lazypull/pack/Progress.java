package dev.lazypull.pack;

import dev.lazypull.image.Descriptor;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Counters of a build, updated from the build's threads and read by whoever shows progress (the CLI
 * prints a live line on a terminal, plain stage lines otherwise). Stage messages go to a {@link
 * Listener}.
 */
public final class Progress {
  /** Receives stage messages ("scanned 1234 entries", "wrote blob …"). */
  public interface Listener {
    void stage(String message);
  }

  public final AtomicLong files = new AtomicLong();
  public final AtomicLong bytesHashed = new AtomicLong();
  public final AtomicLong chunksStored = new AtomicLong();
  public final AtomicLong chunksDeduplicated = new AtomicLong();
  public final AtomicLong bytesStored = new AtomicLong();
  public final AtomicLong blobs = new AtomicLong();

  /** Bytes uploaded to a registry (blobs the registry already had or mounted are not counted). */
  public final AtomicLong bytesPushed = new AtomicLong();

  private final Listener listener;

  public Progress(Listener listener) {
    this.listener = listener;
  }

  /** Progress that reports nothing (tests, library use). */
  public static Progress silent() {
    return new Progress(m -> {});
  }

  public void stage(String message) {
    listener.stage(message);
  }

  void bytesHashed(long n) {
    bytesHashed.addAndGet(n);
  }

  void chunkStored(long n) {
    chunksStored.incrementAndGet();
    bytesStored.addAndGet(n);
  }

  void chunkDeduplicated() {
    chunksDeduplicated.incrementAndGet();
  }

  void blobDone(Descriptor d) {
    blobs.incrementAndGet();
    listener.stage("stored data blob " + d.digest() + " (" + d.size() + " bytes)");
  }

  public void fileAdded() {
    files.incrementAndGet();
  }
}

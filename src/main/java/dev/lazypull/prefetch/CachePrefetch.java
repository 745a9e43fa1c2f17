package dev.lazypull.prefetch;

import dev.lazypull.fetch.BlobCacheFile;
import dev.lazypull.fetch.ChunkFetcher;
import dev.lazypull.fetch.ChunkMap;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * Fills blob cache files ahead of any reader (the standalone {@code lazypull prefetch}): each
 * target's ranges are made present through the files' own fetch core, so the work is chunk-aligned,
 * merged into ranged reads of up to the merge limit, spread over the fetch pool, deduplicated
 * against anything else fetching the same chunks, and verified against digest tables where the
 * files have them. Chunks already cached are skipped.
 *
 * <p>Every range runs to its end even when another fails; {@link #errors} lists what failed.
 * Progress is read from the files' chunk maps, so it counts chunks that were cached before the run
 * too; files whose fetchers are not ready yet count as nothing planned.
 */
public final class CachePrefetch {
  /**
   * One cache file to fill: the whole file when {@code ranges} is null, else these [offset, length]
   * pairs.
   */
  public record Target(BlobCacheFile file, List<long[]> ranges) {
    List<long[]> effectiveRanges() {
      return ranges != null ? ranges : List.of(new long[] {0, file.size()});
    }
  }

  private final List<Target> targets;
  private final int pieceBytes;
  private final AdaptiveLimit inFlight;
  private final List<String> errors = new ArrayList<>();
  private CompletableFuture<Void> all;

  /**
   * Ranges cut into pieces of {@code pieceBytes} (the merge limit: one ranged read each), of which
   * between 1 and {@code maxInFlight} are fetched at a time — as many as make the transfer faster
   * ({@link AdaptiveLimit}).
   */
  public CachePrefetch(List<Target> targets, int pieceBytes, int maxInFlight) {
    if (pieceBytes < 4096) {
      throw new IllegalArgumentException("prefetch piece must be at least 4 KiB: " + pieceBytes);
    }
    this.targets = List.copyOf(targets);
    this.pieceBytes = pieceBytes;
    this.inFlight = AdaptiveLimit.upTo(Math.max(1, maxInFlight));
  }

  /**
   * Starts every fetch (none blocks the caller); the future completes when all have finished,
   * failed or not.
   */
  public synchronized CompletableFuture<Void> start() {
    if (all != null) {
      return all;
    }
    all = new CompletableFuture<>();
    Thread driver = new Thread(this::drive, "lazypull-prefetch-driver");
    driver.setDaemon(true);
    driver.start();
    return all;
  }

  /** Starts the pieces in order, each once the adaptive limit has room for it. */
  private void drive() {
    List<CompletableFuture<Void>> running = new ArrayList<>();
    try {
      for (Target t : targets) {
        for (long[] r : t.effectiveRanges()) {
          long end = r[0] + r[1];
          for (long pos = r[0]; pos < end; ) {
            long next = Math.min(end, (pos / pieceBytes + 1) * pieceBytes);
            long len = next - pos;
            inFlight.acquire();
            CompletableFuture<Void> f = fetch(t, pos, len);
            inFlight.releaseWhenDone(f, len);
            running.add(f);
            pos = next;
          }
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      addError("prefetch interrupted");
    } catch (RuntimeException e) {
      addError(String.valueOf(e));
    }
    CompletableFuture.allOf(running.toArray(new CompletableFuture<?>[0]))
        .whenComplete((v, e) -> all.complete(null));
  }

  /**
   * Makes [offset, offset + length) of the target's file present; never completes exceptionally.
   */
  private CompletableFuture<Void> fetch(Target t, long offset, long length) {
    return t.file()
        .ensure(offset, length)
        .handle(
            (v, e) -> {
              if (e != null) {
                Throwable c =
                    e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
                addError(
                    t.file().ref().blob().digest()
                        + " "
                        + offset
                        + "+"
                        + length
                        + ": "
                        + c.getMessage());
              }
              return null;
            });
  }

  private void addError(String line) {
    synchronized (errors) {
      if (errors.size() < 100) {
        errors.add(line);
      }
    }
  }

  /** Fetches allowed in flight now (adapted). */
  public int concurrency() {
    return inFlight.limit();
  }

  /** Failures so far (at most 100), one line each naming the blob and range. */
  public List<String> errors() {
    synchronized (errors) {
      return List.copyOf(errors);
    }
  }

  /** Bytes the targets cover: their distinct chunks. */
  public long plannedBytes() {
    return count(false);
  }

  /** Of {@link #plannedBytes}, what is cached now. */
  public long readyBytes() {
    return count(true);
  }

  private long count(boolean readyOnly) {
    long n = 0;
    for (Target t : targets) {
      ChunkFetcher f = t.file().fetcher().getNow(null);
      if (f == null) {
        continue;
      }
      ChunkMap map = f.map();
      BitSet covered = new BitSet();
      for (long[] r : t.effectiveRanges()) {
        long end = Math.min(r[0] + r[1], map.paddedSize());
        if (r[0] >= 0 && r[0] < end) {
          covered.set(map.chunkOf(r[0]), map.chunkOf(end - 1) + 1);
        }
      }
      for (int c = covered.nextSetBit(0); c >= 0; c = covered.nextSetBit(c + 1)) {
        if (!readyOnly || map.isReady(c)) {
          n += map.chunkDataEnd(c) - map.chunkStart(c);
        }
      }
    }
    return n;
  }
}

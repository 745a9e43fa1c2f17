package dev.lazypull.fetch;

/**
 * Sequential read-ahead for one blob: when READs keep arriving at or just after the previous one,
 * the chunks ahead of the reader are fetched before the kernel asks for them, so the reader finds
 * them present (no READ at all) or already in flight.
 *
 * <p>The window doubles with every sequential READ up to {@code max}, but never exceeds a tenth of
 * the sequential run read so far (at least one chunk): whatever the reader does next, read-ahead
 * can have fetched at most ~10 % more than it read (plus a chunk), so a reader that stops at the
 * end of a file in the middle of a blob does not pay for much of the next one. A READ elsewhere
 * resets the run. The window is refilled only when less than half of it is left ahead of the
 * reader, so it goes out in batches (few, large ranged reads — per-request cost is what limits a
 * sequential stream), never a chunk per READ. Chunks already asked for are not asked for again, and
 * nothing past the blob's end is requested.
 *
 * <p>Pure bookkeeping — no I/O, no waiting — so the devnode poll thread may call {@link #onRead};
 * the caller hands the returned range to {@link ChunkFetcher#ensure}.
 */
public final class ReadAhead {
  /** A byte range to fetch ahead. */
  public record Range(long offset, long length) {}

  /**
   * The window is at most run / OVERSHOOT_DIVISOR: bytes fetched ÷ bytes read stays ≤ 1.1 (plus a
   * chunk).
   */
  static final int OVERSHOOT_DIVISOR = 10;

  private final ChunkMap map;
  private final int max;
  private int runStart = -1;
  private int lastFirst = -1;
  private int lastLast = -1;
  private int issuedUntil = -1;
  private int window;

  /**
   * @param maxBytes the largest window ({@code 0} disables read-ahead)
   */
  public ReadAhead(ChunkMap map, long maxBytes) {
    this.map = map;
    this.max = (int) Math.min(Integer.MAX_VALUE, maxBytes / map.chunkSize());
  }

  /**
   * Records a READ of {@code [offset, offset+length)}; returns what to fetch ahead of it, or null.
   */
  public synchronized Range onRead(long offset, long length) {
    long end = Math.min(offset + length, map.paddedSize());
    if (max == 0 || offset < 0 || length <= 0 || offset >= end) {
      return null;
    }
    int first = map.chunkOf(offset);
    int last = map.chunkOf(end - 1);
    boolean sequential =
        lastLast >= 0 && first >= lastFirst && first <= Math.max(lastLast, issuedUntil) + 1;
    lastFirst = first;
    lastLast = last;
    if (!sequential) {
      runStart = first;
      window = 0;
      issuedUntil = -1;
      return null;
    }
    int run = last - runStart + 1;
    int cap = Math.min(max, Math.max(1, run / OVERSHOOT_DIVISOR));
    window = Math.min(cap, window == 0 ? 1 : window * 2);
    if (issuedUntil - last > window / 2) {
      return null; // still well ahead: extend in batches of at least half a window, not a chunk per
      // READ
    }
    int from = Math.max(last + 1, issuedUntil + 1);
    int to = (int) Math.min((long) last + window, map.chunkCount() - 1L);
    if (from > to) {
      return null;
    }
    issuedUntil = to;
    long start = map.chunkStart(from);
    return new Range(start, map.chunkFileEnd(to) - start);
  }

  /** The current window in bytes (0 when the reader is not sequential). */
  public synchronized long windowBytes() {
    return (long) window * map.chunkSize();
  }
}

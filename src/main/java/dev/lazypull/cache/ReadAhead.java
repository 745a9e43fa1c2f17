package dev.lazypull.cache;

/**
 * Sequential read-ahead for one blob: when READs keep arriving at or just after the previous one, the
 * chunks ahead of the reader are fetched before the kernel asks for them, so the reader finds them present
 * (no READ at all) or already in flight. The window starts at {@code initial} chunks and doubles with every
 * sequential READ up to {@code max}; a READ elsewhere resets it. Chunks already asked for are not asked for
 * again, and nothing past the blob's end is requested.
 *
 * <p>Pure bookkeeping — no I/O, no waiting — so the devnode poll thread may call {@link #onRead}; the caller
 * hands the returned range to {@link ChunkFetcher#ensure}, which merges it into parallel ranged reads.
 */
public final class ReadAhead {
  /** A byte range to fetch ahead. */
  public record Range(long offset, long length) {}

  private final ChunkMap map;
  private final int initial;
  private final int max;
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
    this.initial = Math.min(4, max);
  }

  /** Records a READ of {@code [offset, offset+length)}; returns what to fetch ahead of it, or null. */
  public synchronized Range onRead(long offset, long length) {
    long end = Math.min(offset + length, map.paddedSize());
    if (max == 0 || offset < 0 || length <= 0 || offset >= end) {
      return null;
    }
    int first = map.chunkOf(offset);
    int last = map.chunkOf(end - 1);
    boolean sequential = lastLast >= 0 && first >= lastFirst && first <= Math.max(lastLast + 1, issuedUntil);
    lastFirst = first;
    lastLast = last;
    if (!sequential) {
      window = 0;
      issuedUntil = -1;
      return null;
    }
    window = window == 0 ? initial : Math.min(max, window * 2);
    int from = Math.max(last + 1, issuedUntil + 1);
    int to = (int) Math.min((long) last + window, map.chunkCount() - 1L);
    if (from > to) {
      return null;
    }
    issuedUntil = to;
    long start = map.chunkStart(from);
    return new Range(start, map.chunkFileEnd(to) - start);
  }
}

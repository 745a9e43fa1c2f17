package dev.lazypull.fetch;

import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.sys.AlignedBuffers;
import java.io.IOException;
import java.util.Arrays;
import org.roaringbitmap.IntIterator;
import org.roaringbitmap.RoaringBitmap;

/**
 * Which chunks of one blob's cache file hold data. A chunk is the fetch unit: usually {@code
 * chunkSize} bytes (power of two, ≥ 4096) at a chunk-aligned offset; the last chunk ends at the
 * blob's size rounded up to 4096, its tail zero-padded, because cachefiles backing files are
 * written in whole 4 KiB blocks.
 *
 * <p>A blob with a chunk digest table is cut along the table's entries instead ({@link #forTable}):
 * each chunk is then exactly one verifiable unit, so every fetch covers whole entries and none is
 * fetched twice. Thread-safe.
 */
public final class ChunkMap {
  private final long blobSize;
  private final long paddedSize;
  private final int chunkShift;
  private final int chunkCount;

  /** Chunk start offsets when chunks follow a digest table (ascending, from 0), else null. */
  private final long[] starts;

  private final RoaringBitmap ready = new RoaringBitmap();

  public ChunkMap(long blobSize, int chunkSize) {
    if (chunkSize < AlignedBuffers.ALIGNMENT || Integer.bitCount(chunkSize) != 1) {
      throw new IllegalArgumentException("chunk size must be a power of two >= 4096: " + chunkSize);
    }
    if (blobSize < 0) {
      throw new IllegalArgumentException("negative blob size " + blobSize);
    }
    this.blobSize = blobSize;
    this.paddedSize = AlignedBuffers.roundUp(blobSize, AlignedBuffers.ALIGNMENT);
    this.chunkShift = Integer.numberOfTrailingZeros(chunkSize);
    long count = (paddedSize + chunkSize - 1) >>> chunkShift;
    if (count > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "blob of " + blobSize + " bytes has too many " + chunkSize + "-byte chunks");
    }
    this.chunkCount = (int) count;
    this.starts = null;
  }

  private ChunkMap(long blobSize, long[] starts, int maxUnit) {
    this.blobSize = blobSize;
    this.paddedSize = AlignedBuffers.roundUp(blobSize, AlignedBuffers.ALIGNMENT);
    this.chunkShift =
        31 - Integer.numberOfLeadingZeros(Math.max(AlignedBuffers.ALIGNMENT, maxUnit));
    this.chunkCount = starts.length;
    this.starts = starts;
  }

  /** Chunks along a digest table's entries: entry i is chunk i. */
  public static ChunkMap forTable(ChunkDigestTable table) {
    long[] starts = new long[table.size()];
    int max = AlignedBuffers.ALIGNMENT;
    for (int i = 0; i < starts.length; i++) {
      starts[i] = table.offset(i);
      max = Math.max(max, table.length(i));
    }
    return new ChunkMap(table.blobSize(), starts, max);
  }

  public long blobSize() {
    return blobSize;
  }

  /** The blob size rounded up to 4096: the end of the last chunk in the cache file. */
  public long paddedSize() {
    return paddedSize;
  }

  /** The fetch unit; for table-cut maps, the largest power of two not above the largest entry. */
  public int chunkSize() {
    return 1 << chunkShift;
  }

  public int chunkCount() {
    return chunkCount;
  }

  public int chunkOf(long offset) {
    if (starts == null) {
      return (int) (offset >>> chunkShift);
    }
    int i = Arrays.binarySearch(starts, offset);
    return i >= 0 ? i : Math.max(0, -i - 2);
  }

  public long chunkStart(int chunk) {
    if (starts == null) {
      return (long) chunk << chunkShift;
    }
    return chunk >= starts.length ? paddedSize : starts[chunk];
  }

  /** Start of the next chunk (or the padded end). */
  private long chunkLimit(int chunk) {
    return starts == null ? chunkStart(chunk) + chunkSize() : chunkStart(chunk + 1);
  }

  /** End of the chunk's blob bytes (exclusive), clamped to the blob size. */
  public long chunkDataEnd(int chunk) {
    return Math.min(chunkLimit(chunk), blobSize);
  }

  /** End of the chunk in the cache file (exclusive), clamped to the padded size. */
  public long chunkFileEnd(int chunk) {
    return Math.min(chunkLimit(chunk), paddedSize);
  }

  public synchronized boolean isReady(int chunk) {
    return ready.contains(chunk);
  }

  public synchronized void markReady(int chunk) {
    ready.add(chunk);
  }

  public synchronized boolean allReady() {
    return ready.getLongCardinality() == chunkCount;
  }

  public synchronized int readyCount() {
    return ready.getCardinality();
  }

  /** Bytes of the blob held in ready chunks. */
  public synchronized long readyBytes() {
    if (starts != null) {
      long n = 0;
      for (IntIterator it = ready.getIntIterator(); it.hasNext(); ) {
        int c = it.next();
        n += chunkDataEnd(c) - chunkStart(c);
      }
      return n;
    }
    long n = (long) ready.getCardinality() << chunkShift;
    if (chunkCount > 0 && ready.contains(chunkCount - 1)) {
      n -= ((long) chunkCount << chunkShift) - blobSize;
    }
    return n;
  }

  /** The first chunk at or after {@code from} that is not ready, or -1. */
  public synchronized int nextMissing(int from) {
    if (from >= chunkCount) {
      return -1;
    }
    long next = ready.nextAbsentValue(from);
    return next >= chunkCount ? -1 : (int) next;
  }

  /** Probes where a backing file holds data: SEEK_DATA/SEEK_HOLE, -1 for "none at or after". */
  public interface ExtentProbe {
    long seekData(long offset) throws IOException;

    long seekHole(long offset) throws IOException;
  }

  /**
   * Marks every chunk the backing file fully covers with data. This is how readiness survives
   * restarts: the kernel itself decides "present" by SEEK_DATA, so the file is the truth.
   */
  public void rebuild(ExtentProbe probe) throws IOException {
    RoaringBitmap found = new RoaringBitmap();
    long pos = 0;
    while (pos < paddedSize) {
      long data = probe.seekData(pos);
      if (data < 0 || data >= paddedSize) {
        break;
      }
      long hole = probe.seekHole(data);
      if (hole < 0 || hole > paddedSize) {
        hole = paddedSize;
      }
      if (hole <= data) { // a probe that does not advance would loop forever
        throw new IOException("SEEK_HOLE(" + data + ") returned " + hole);
      }
      int c = chunkOf(data);
      if (chunkStart(c) < data) {
        c++; // only chunks that start inside the data extent can be fully covered by it
      }
      for (; c < chunkCount && chunkFileEnd(c) <= hole; c++) {
        found.add(c);
      }
      pos = hole;
    }
    synchronized (this) {
      ready.or(found);
    }
  }
}

package dev.lazypull.fetch;

import dev.lazypull.metrics.Histogram;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

/**
 * Counters of the fetch core, shared by every blob of one process; {@link #snapshot} for status.
 */
public final class FetchStats {
  public final LongAdder fetches = new LongAdder();
  public final LongAdder fetchFailures = new LongAdder();

  /** Bytes read from blob sources: what the wire carried (compressed frames as stored). */
  public final LongAdder bytesFetched = new LongAdder();

  /**
   * Bytes compressed chunks decompressed to (counted next to their stored size in {@link
   * #bytesFetched}).
   */
  public final LongAdder bytesDecompressed = new LongAdder();

  public final LongAdder bytesWritten = new LongAdder();
  public final LongAdder chunksDeduplicated = new LongAdder();

  /** Chunks verified against the image's digest table before being written. */
  public final LongAdder chunksVerified = new LongAdder();

  /** Digest mismatches in bytes from a mirror (then fetched again from the origin). */
  public final LongAdder integrityMismatchesMirror = new LongAdder();

  /** Digest mismatches in bytes from the origin (the READ fails with EIO). */
  public final LongAdder integrityMismatchesOrigin = new LongAdder();

  /** Time of one ranged fetch: open, stream, write. */
  public final Histogram fetchLatency = Histogram.latency();

  public Map<String, Long> snapshot() {
    Map<String, Long> m = new LinkedHashMap<>();
    m.put("fetches", fetches.sum());
    m.put("fetchFailures", fetchFailures.sum());
    m.put("bytesFetched", bytesFetched.sum());
    m.put("bytesDecompressed", bytesDecompressed.sum());
    m.put("bytesWritten", bytesWritten.sum());
    m.put("chunksDeduplicated", chunksDeduplicated.sum());
    m.put("chunksVerified", chunksVerified.sum());
    m.put("integrityMismatchesMirror", integrityMismatchesMirror.sum());
    m.put("integrityMismatchesOrigin", integrityMismatchesOrigin.sum());
    return m;
  }
}

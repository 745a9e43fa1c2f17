package dev.lazypull.frontend;

import dev.lazypull.metrics.Histogram;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

/**
 * Counters of a front end's kernel requests (fscache OPEN/READ/CLOSE, fanotify events); {@link
 * #snapshot} is what status and metrics report, next to the fetch core's counters.
 */
public final class RequestStats {
  public final LongAdder opens = new LongAdder();
  public final LongAdder opensRefused = new LongAdder();
  public final LongAdder closes = new LongAdder();
  public final LongAdder reads = new LongAdder();
  public final LongAdder readsOk = new LongAdder();
  public final LongAdder readsFailed = new LongAdder();
  public final LongAdder readsTimedOut = new LongAdder();
  public final LongAdder readsInvalid = new LongAdder();
  public final LongAdder readsOrphaned = new LongAdder();
  public final LongAdder readBytesRequested = new LongAdder();
  public final LongAdder malformed = new LongAdder();
  public final LongAdder replyErrors = new LongAdder();

  /**
   * From a request's arrival to its reply; microsecond buckets at the low end (answers from the
   * chunk map).
   */
  public final Histogram readLatency = Histogram.eventLatency();

  public Map<String, Long> snapshot() {
    Map<String, Long> m = new LinkedHashMap<>();
    m.put("opens", opens.sum());
    m.put("opensRefused", opensRefused.sum());
    m.put("closes", closes.sum());
    m.put("reads", reads.sum());
    m.put("readsOk", readsOk.sum());
    m.put("readsFailed", readsFailed.sum());
    m.put("readsTimedOut", readsTimedOut.sum());
    m.put("readsInvalid", readsInvalid.sum());
    m.put("readsOrphaned", readsOrphaned.sum());
    m.put("readBytesRequested", readBytesRequested.sum());
    m.put("malformedMessages", malformed.sum());
    m.put("replyErrors", replyErrors.sum());
    return m;
  }
}

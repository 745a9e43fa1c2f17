package dev.lazypull.app;

import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.fetch.FetchStats;
import dev.lazypull.frontend.CacheKeeper;
import dev.lazypull.frontend.RequestStats;
import dev.lazypull.frontend.ServedBlob;
import dev.lazypull.metrics.PrometheusText;
import dev.lazypull.registry.RegistryStats;
import java.io.IOException;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/** The daemon's Prometheus metrics (names documented in docs/operations.md). */
public final class DaemonMetrics implements Consumer<PrometheusText> {
  private static final long USAGE_CACHE_NANOS = 10_000_000_000L;
  private final Daemon daemon;
  private final Catalog catalog;
  private final CacheKeeper janitor;
  private final Duration hungAfter;
  private volatile RegistryStats registry;
  private long usageAt;
  private long usage = -1;

  public DaemonMetrics(Daemon daemon, Duration hungAfter) {
    this.daemon = daemon;
    this.catalog = daemon.catalog();
    this.janitor = daemon.cacheKeeper();
    this.hungAfter = hungAfter;
  }

  /** Also reports the registry client's counters. */
  public DaemonMetrics withRegistry(RegistryStats stats) {
    this.registry = stats;
    return this;
  }

  @Override
  public void accept(PrometheusText out) {
    RequestStats s = daemon.frontend().stats();
    FetchStats f = daemon.fetchStats();
    out.header("lazypull_frontend_info", "The kernel front end this daemon serves.", "gauge");
    out.sample(
        "lazypull_frontend_info",
        "{" + PrometheusText.label("frontend", daemon.frontend().name()) + "}",
        1);
    String reads = "lazypull_reads_total";
    out.header(reads, "Kernel READ requests answered, by outcome.", "counter");
    out.sample(reads, "{outcome=\"ok\"}", s.readsOk.sum());
    out.sample(reads, "{outcome=\"failed\"}", s.readsFailed.sum());
    out.sample(reads, "{outcome=\"timeout\"}", s.readsTimedOut.sum());
    out.sample(reads, "{outcome=\"invalid\"}", s.readsInvalid.sum());
    out.sample(reads, "{outcome=\"orphaned\"}", s.readsOrphaned.sum());
    out.counter(
        "lazypull_read_requested_bytes_total",
        "Bytes the kernel asked for in READs.",
        s.readBytesRequested.sum());
    out.counter(
        "lazypull_fetched_bytes_total", "Bytes fetched from blob sources.", f.bytesFetched.sum());
    out.counter(
        "lazypull_decompressed_bytes_total",
        "Bytes of compressed chunks after decompression (verified before they are written).",
        f.bytesDecompressed.sum());
    out.counter(
        "lazypull_written_bytes_total",
        "Bytes written into cache files (block padded).",
        f.bytesWritten.sum());
    out.counter("lazypull_fetches_total", "Ranged fetches started.", f.fetches.sum());
    out.counter(
        "lazypull_fetch_failures_total", "Ranged fetches that failed.", f.fetchFailures.sum());
    out.counter(
        "lazypull_chunks_deduplicated_total",
        "Chunk misses that joined a fetch already in flight.",
        f.chunksDeduplicated.sum());
    out.counter(
        "lazypull_chunks_verified_total",
        "Chunks checked against the image's digest table.",
        f.chunksVerified.sum());
    out.header(
        "lazypull_integrity_mismatches_total",
        "Fetched chunks that failed their digest, by source.",
        "counter");
    out.sample(
        "lazypull_integrity_mismatches_total",
        "{source=\"mirror\"}",
        f.integrityMismatchesMirror.sum());
    out.sample(
        "lazypull_integrity_mismatches_total",
        "{source=\"origin\"}",
        f.integrityMismatchesOrigin.sum());
    f.fetchLatency.write(
        out, "lazypull_fetch_duration_seconds", "Duration of one ranged fetch.", "");
    s.readLatency.write(
        out, "lazypull_read_duration_seconds", "From a READ's arrival to its reply.", "");
    long[] inflight = daemon.frontend().inflightRequests(hungAfter);
    out.gauge("lazypull_reads_inflight", "READs received and not yet answered.", inflight[0]);
    out.gauge(
        "lazypull_reads_hung",
        "In-flight READs older than " + hungAfter.toSeconds() + "s.",
        inflight[1]);
    out.counter("lazypull_opens_total", "OPEN requests.", s.opens.sum());
    out.counter(
        "lazypull_opens_refused_total",
        "OPEN requests refused (unknown image or source error).",
        s.opensRefused.sum());
    out.counter(
        "lazypull_malformed_messages_total", "Malformed devnode messages.", s.malformed.sum());
    RegistryStats reg = registry;
    if (reg != null) {
      out.counter(
          "lazypull_registry_requests_total",
          "HTTP requests sent to registries (each retry counts).",
          reg.requests.sum());
      out.counter(
          "lazypull_registry_retries_total",
          "Registry requests retried (connection errors, 5xx, 429).",
          reg.retries.sum());
      out.counter(
          "lazypull_registry_token_fetches_total",
          "Bearer tokens fetched (first use, expiry, refusal).",
          reg.tokenFetches.sum());
      out.counter(
          "lazypull_registry_mirror_fallbacks_total",
          "Pulls that moved on from a mirror.",
          reg.mirrorFallbacks.sum());
    }
    List<ServedBlob> served = daemon.frontend().served();
    out.gauge(
        "lazypull_objects_open",
        "Blobs the front end serves (kernel cache objects, marked files).",
        served.size());
    out.gauge("lazypull_cache_disk_bytes", "Bytes the cache occupies on disk.", cacheUsage());
    out.gauge(
        "lazypull_cache_budget_bytes", "Configured cache budget (0 = none).", janitor.budget());
    Map<String, Long> ready = new HashMap<>();
    for (ServedBlob o : served) {
      ready.merge(o.binding().image().fsid(), o.readyBytes(), Long::sum);
    }
    out.header(
        "lazypull_image_ready_bytes",
        "Bytes of a mounted image already cached (open objects).",
        "gauge");
    out.header(
        "lazypull_image_size_bytes", "Bytes of an image (bootstrap and data blobs).", "gauge");
    for (ImageRecord r : catalog.list()) {
      String l = "{" + PrometheusText.label("fsid", r.fsid()) + "}";
      out.sample("lazypull_image_ready_bytes", l, ready.getOrDefault(r.fsid(), 0L));
      out.sample("lazypull_image_size_bytes", l, r.totalBytes());
    }
  }

  private synchronized long cacheUsage() {
    long now = System.nanoTime();
    if (usage < 0 || now - usageAt > USAGE_CACHE_NANOS) {
      try {
        usage = janitor.usage();
        usageAt = now;
      } catch (IOException e) {
        return usage;
      }
    }
    return usage;
  }
}

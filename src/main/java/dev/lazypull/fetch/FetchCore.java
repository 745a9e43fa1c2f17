package dev.lazypull.fetch;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.sys.AlignedBuffers;
import dev.lazypull.sys.OnceLogger;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.logging.Logger;

/**
 * The one fetch core of a process, under every front end (fscache objects, fanotify-marked cache
 * files, NBD exports, standalone prefetch): settings, per-origin fetch threads, counters, chunk
 * digest tables and aligned buffers, and {@link #open}, which builds a blob's {@link ChunkFetcher}
 * complete — verification decided, table loaded, chunk map cut, what the sink holds probed — before
 * anything is fetched.
 *
 * <p>The verification policy lives here and nowhere else: a data blob with a chunk digest table is
 * cut along the table and every entry checked before it is written; a bootstrap is fetched whole
 * and checked against its own digest ({@link ChunkDigestTable#whole}; one over {@value
 * ChunkDigestTable#MAX_WHOLE_BYTES} bytes is served unverified, with a warning); a data blob of an
 * image without tables is fetched unverified in fixed chunks.
 */
public final class FetchCore implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(FetchCore.class.getName());

  private final FetchSettings settings;
  private final FetchStats stats;
  private final FetchPools pools;
  private final ChunkTables tables;
  private final ThreadLocal<ByteBuffer> buffers;
  private final OnceLogger once = new OnceLogger(LOG);

  /**
   * @param tableStore where checked chunk digest tables are kept on disk, or null to keep them in
   *     memory only
   */
  public FetchCore(FetchSettings settings, FetchStats stats, Path tableStore) {
    this.settings = settings;
    this.stats = stats;
    this.pools = new FetchPools(settings.threadsPerOrigin());
    this.tables = new ChunkTables(tableStore);
    this.buffers = ThreadLocal.withInitial(() -> AlignedBuffers.allocate(settings.bufferSize()));
  }

  public FetchSettings settings() {
    return settings;
  }

  public FetchStats stats() {
    return stats;
  }

  /** The fetch threads of one origin ({@link FetchPools#origin}). */
  public ExecutorService pool(String origin) {
    return pools.forOrigin(origin);
  }

  /** Local work that must not wait behind any origin's fetches: probing what cache files hold. */
  public ExecutorService probePool() {
    return pools.forOrigin(FetchPools.CACHE_PROBES);
  }

  /**
   * Builds the fetcher of {@code ref}'s blob writing into {@code sink}: loads its chunk digest
   * table (on the origin's threads) when it has one, cuts the chunk map, and probes what the sink
   * already holds (on the probe threads). The future fails when the table cannot be loaded or
   * checked; a failed probe only costs refetching chunks the sink already holds (logged).
   */
  public CompletableFuture<ChunkFetcher> open(BlobRef ref, BlobSource source, ChunkSink sink) {
    ExecutorService originPool = pools.forOrigin(ref.origin());
    return verification(ref, source, originPool)
        .thenApplyAsync(
            table -> {
              ChunkMap map =
                  table != null
                      ? ChunkMap.forTable(table)
                      : new ChunkMap(ref.deviceSize(), settings.chunkSize());
              try {
                map.rebuild(sink);
              } catch (IOException | RuntimeException e) {
                if (sink.isOpen()) { // a closed sink's user has gone: nobody fetches through this
                  // fetcher
                  LOG.warning(sink + ": cannot probe cached extents: " + e.getMessage());
                }
              }
              return new ChunkFetcher(
                  ref.blob(), table, source, sink, map, originPool, settings, stats, buffers::get);
            },
            probePool());
  }

  /**
   * The digest table every fetch of {@code ref} is checked against, or null when it is fetched
   * unverified.
   */
  private CompletableFuture<ChunkDigestTable> verification(
      BlobRef ref, BlobSource source, ExecutorService pool) {
    if (ref.table() != null) {
      return tables.get(ref.table(), ref.blob(), source, pool);
    }
    if (ref.metadata()) {
      ChunkDigestTable whole = ChunkDigestTable.whole(ref.blob());
      if (whole == null && ref.blob().size() > 0) {
        once.warn(
            "bigboot:" + ref.blob().digest(),
            "bootstrap "
                + ref.blob().digest()
                + " is "
                + ref.blob().size()
                + " bytes, over the "
                + ChunkDigestTable.MAX_WHOLE_BYTES
                + " verified as one unit: served unverified");
      }
      return CompletableFuture.completedFuture(whole);
    }
    return CompletableFuture.completedFuture(null);
  }

  /**
   * Waits for {@code f}, unwrapping its failure into an IOException (for callers that must block).
   */
  public static <T> T join(CompletableFuture<T> f) throws IOException {
    try {
      return f.join();
    } catch (CompletionException e) {
      Throwable c = e.getCause() != null ? e.getCause() : e;
      if (c instanceof IOException io) {
        throw io;
      }
      throw new IOException(String.valueOf(c.getMessage()), c);
    }
  }

  /**
   * Stops every fetch pool: queued fetches are not run (their requests are failed by the front
   * ends).
   */
  @Override
  public void close() {
    pools.close();
  }
}

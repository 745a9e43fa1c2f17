package dev.lazypull.cache;

import java.nio.ByteBuffer;
import java.util.concurrent.Executor;
import java.util.function.Supplier;

/**
 * What every {@link ChunkFetcher} of one process shares: the fetch pool, the fetch unit and merge limit, the
 * counters, and the per-thread aligned scratch buffers.
 *
 * @param chunkSize fetch unit, a power of two ≥ 4096
 * @param mergeLimit most bytes one ranged read covers when adjacent missing chunks are merged
 * @param buffers gives the calling fetch thread its 4096-aligned scratch buffer
 */
public record FetchContext(Executor pool, int chunkSize, int mergeLimit, FetchStats stats,
    Supplier<ByteBuffer> buffers) {}

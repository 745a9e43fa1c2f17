package dev.lazypull.index;

import dev.lazypull.image.Digest;
import java.io.IOException;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Recently inflated gzip spans (their uncompressed bytes), shared by every device of the process,
 * least recently used first out, within a byte budget. A span holds many small files; the fetch
 * core asks for them one digest entry at a time, so without this each entry would fetch and inflate
 * its whole span again. Concurrent misses of one span share one load; a failed load is not kept
 * (the next reader tries again). Only bytes of spans that verified (span digest, checkpoint and end
 * checks) are ever put here.
 */
public final class SpanCache {
  public static final long DEFAULT_BUDGET = 64L << 20;

  /** A span of a layer. */
  record Key(Digest layer, int span) {}

  /** Loads one span's uncompressed bytes. */
  interface Loader {
    byte[] load() throws IOException;
  }

  private final long budget;
  private final LinkedHashMap<Key, byte[]> lru = new LinkedHashMap<>(16, 0.75f, true);
  private final Map<Key, CompletableFuture<byte[]>> loading = new ConcurrentHashMap<>();
  private long bytes;
  private long hits;
  private long misses;

  public SpanCache(long budget) {
    this.budget = budget;
  }

  byte[] get(Key key, Loader loader) throws IOException {
    synchronized (lru) {
      byte[] b = lru.get(key);
      if (b != null) {
        hits++;
        return b;
      }
      misses++;
    }
    CompletableFuture<byte[]> mine = new CompletableFuture<>();
    CompletableFuture<byte[]> f = loading.putIfAbsent(key, mine);
    if (f == null) {
      try {
        byte[] b = loader.load();
        put(key, b);
        mine.complete(b);
        return b;
      } catch (IOException | RuntimeException | Error e) {
        mine.completeExceptionally(e);
        throw e;
      } finally {
        loading.remove(key, mine);
      }
    }
    try {
      return f.join();
    } catch (CompletionException e) {
      Throwable c = e.getCause();
      if (c instanceof IOException io) {
        throw new IOException(io.getMessage(), io);
      }
      throw new IOException(String.valueOf(c), c);
    }
  }

  private void put(Key key, byte[] b) {
    synchronized (lru) {
      if (b.length > budget) {
        return;
      }
      byte[] old = lru.put(key, b);
      bytes += b.length - (old == null ? 0 : old.length);
      Iterator<byte[]> it = lru.values().iterator();
      while (bytes > budget && it.hasNext()) {
        bytes -= it.next().length;
        it.remove();
      }
    }
  }

  /** {hits, misses, bytes held}. */
  public long[] stats() {
    synchronized (lru) {
      return new long[] {hits, misses, bytes};
    }
  }

  /** Forgets every span (tests). */
  public void clear() {
    synchronized (lru) {
      lru.clear();
      bytes = 0;
    }
  }
}

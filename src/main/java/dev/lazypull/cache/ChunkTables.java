package dev.lazypull.cache;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import java.io.IOException;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;

/**
 * Chunk digest tables, loaded once per table digest for the owner's life (the daemon, an NBD export, a
 * standalone prefetch): downloaded whole, checked against their own sha256 (the manifest names them), decoded
 * against the blob's size — 48 bytes per chunk, kept. A load that fails is forgotten, so the next user tries
 * again once the source is back. Loads in progress are per source: two images sharing a blob through different
 * registries do not wait for, or share, each other's failing download.
 */
public final class ChunkTables {
  /** Tables are 48 bytes per chunk: 64 MiB covers a 1.4 TiB blob of 1 MiB chunks. */
  public static final long MAX_TABLE_BYTES = 64L << 20;

  private record Key(Digest table, BlobSource source) {}

  /** Checked tables, by digest: a table that hashes to its digest is the same from any source. */
  private final Map<Digest, ChunkDigestTable> loaded = new ConcurrentHashMap<>();
  /** Loads in progress, per source: a stalled or failing source delays no other source's load. */
  private final Map<Key, CompletableFuture<ChunkDigestTable>> loading = new ConcurrentHashMap<>();

  /** The table, loaded on {@code pool} the first time it is asked for. */
  public CompletableFuture<ChunkDigestTable> get(Descriptor table, Descriptor blob, BlobSource source,
      Executor pool) {
    ChunkDigestTable done = loaded.get(table.digest());
    if (done != null) {
      return CompletableFuture.completedFuture(done);
    }
    Key key = new Key(table.digest(), source);
    CompletableFuture<ChunkDigestTable> f = loading.computeIfAbsent(key,
        k -> CompletableFuture.supplyAsync(() -> {
          try {
            return load(table, blob, source);
          } catch (IOException e) {
            throw new CompletionException(e);
          }
        }, pool));
    f.whenComplete((t, e) -> {
      if (t != null) {
        loaded.putIfAbsent(table.digest(), t);
      }
      loading.remove(key, f); // a failed load is tried again by the next user
    });
    return f;
  }

  /**
   * Reads and checks one table now, on the caller's thread.
   *
   * @throws IOException if it cannot be read, is too large, does not hash to its digest or does not decode
   *     against {@code blob}
   */
  public static ChunkDigestTable load(Descriptor table, Descriptor blob, BlobSource source) throws IOException {
    return ChunkDigestTable.decode(fetch(table, source), blob.size());
  }

  /** The table's bytes from {@code source}, size-limited and checked against the table's digest. */
  public static byte[] fetch(Descriptor table, BlobSource source) throws IOException {
    return source.readVerified(table, MAX_TABLE_BYTES, "chunk digest table");
  }
}

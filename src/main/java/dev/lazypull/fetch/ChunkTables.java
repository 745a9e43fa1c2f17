package dev.lazypull.fetch;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.sys.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.logging.Logger;

/**
 * Chunk digest tables, loaded once per table digest for the process's life: downloaded whole,
 * checked against their own sha256 (the manifest names them), decoded against the blob's size — 48
 * bytes per chunk, kept. With a store directory (the host cache's {@code tables/}) a checked copy
 * is kept on disk too, so a fully cached image needs nothing but its manifest from the registry. A
 * load that fails is forgotten, so the next user tries again once the source is back. Loads in
 * progress are per source: two images sharing a blob through different registries do not wait for,
 * or share, each other's failing download.
 */
public final class ChunkTables {
  private static final Logger LOG = Logger.getLogger(ChunkTables.class.getName());

  /** Tables are 48 bytes per chunk: 64 MiB covers a 1.4 TiB blob of 1 MiB chunks. */
  public static final long MAX_TABLE_BYTES = 64L << 20;

  /**
   * A table decodes only against the size of the blob it describes: the size is part of every key.
   */
  private record Key(Digest table, long blobSize, BlobSource source) {}

  private record Loaded(Digest table, long blobSize) {}

  private final Path store;

  /** Checked tables, by digest: a table that hashes to its digest is the same from any source. */
  private final Map<Loaded, ChunkDigestTable> loaded = new ConcurrentHashMap<>();

  /** Loads in progress, per source: a stalled or failing source delays no other source's load. */
  private final Map<Key, CompletableFuture<ChunkDigestTable>> loading = new ConcurrentHashMap<>();

  /**
   * @param store where checked copies are kept ({@code <hex>} files), or null for memory only
   */
  public ChunkTables(Path store) {
    this.store = store;
  }

  /** The table, loaded on {@code pool} the first time it is asked for. */
  public CompletableFuture<ChunkDigestTable> get(
      Descriptor table, Descriptor blob, BlobSource source, Executor pool) {
    Loaded id = new Loaded(table.digest(), blob.size());
    ChunkDigestTable done = loaded.get(id);
    if (done != null) {
      return CompletableFuture.completedFuture(done);
    }
    Key key = new Key(table.digest(), blob.size(), source);
    CompletableFuture<ChunkDigestTable> f =
        loading.computeIfAbsent(
            key,
            k ->
                CompletableFuture.supplyAsync(
                    () -> {
                      try {
                        return load(table, blob, source);
                      } catch (IOException e) {
                        throw new CompletionException(e);
                      }
                    },
                    pool));
    f.whenComplete(
        (t, e) -> {
          if (t != null) {
            loaded.putIfAbsent(id, t);
          }
          loading.remove(key, f); // a failed load is tried again by the next user
        });
    return f;
  }

  /**
   * The stored copy when there is one that still hashes to its digest, else the source's (then
   * stored).
   */
  private ChunkDigestTable load(Descriptor table, Descriptor blob, BlobSource source)
      throws IOException {
    Path p = store == null ? null : store.resolve(table.digest().hex());
    if (p != null
        && Files.isRegularFile(p)
        && Files.size(p) == table.size()
        && table.size() <= MAX_TABLE_BYTES) {
      byte[] local = Files.readAllBytes(p);
      if (Digest.of(local).equals(table.digest())) {
        return ChunkDigestTable.decode(local, blob);
      }
    }
    byte[] bytes = fetch(table, source);
    ChunkDigestTable decoded = ChunkDigestTable.decode(bytes, blob);
    if (p != null) {
      try {
        AtomicFiles.write(p, bytes);
      } catch (IOException e) { // only the next start's download is lost
        LOG.warning(
            "cannot keep chunk digest table "
                + table.digest()
                + " in "
                + store
                + ": "
                + e.getMessage());
      }
    }
    return decoded;
  }

  /**
   * Reads and checks one table now, on the caller's thread, without a store.
   *
   * @throws IOException if it cannot be read, is too large, does not hash to its digest or does not
   *     decode against {@code blob}
   */
  public static ChunkDigestTable loadNow(Descriptor table, Descriptor blob, BlobSource source)
      throws IOException {
    return ChunkDigestTable.decode(fetch(table, source), blob);
  }

  /** The table's bytes from {@code source}, size-limited and checked against the table's digest. */
  public static byte[] fetch(Descriptor table, BlobSource source) throws IOException {
    return source.readVerified(table, MAX_TABLE_BYTES, "chunk digest table");
  }
}

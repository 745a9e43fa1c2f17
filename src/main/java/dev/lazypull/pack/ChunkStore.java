package dev.lazypull.pack;

import dev.lazypull.compress.Compression;
import dev.lazypull.compress.ZstdCodec;
import dev.lazypull.erofs.ErofsNode;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.image.Sha256Stream;
import dev.lazypull.sys.DaemonThreads;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Stores file data as chunks in data blobs: the producer (one thread: a directory reader or a tar
 * stream) fills pooled buffers with one chunk each and submits them; worker threads check for
 * all-zero chunks (stored as holes), compute each chunk's sha256 over its block-padded bytes and,
 * unless the compression is {@link Compression#NONE}, compress those padded bytes into one zstd
 * frame; one committer thread takes the results in submission order, deduplicates by digest,
 * appends new chunks to the current blob (raw: 4 KiB-aligned padded bytes; compressed: the frames
 * back to back) while hashing the blob (and, when compressed, the uncompressed device it stands
 * for: the layer's diff_id), and records each blob's chunk digest table (version 1 raw, version 2
 * compressed).
 *
 * <p>Submission order alone decides the blob bytes, and zstd gives the same frame for the same
 * bytes and level whichever thread compresses them, so the same input gives the same blobs at any
 * thread count. Memory is bounded by the buffer pool (a few chunks per thread), whatever the tree
 * size; the dedup map and digest tables grow with the number of distinct chunks (about 80 bytes
 * each).
 *
 * <p>Dedup scope: a {@link #startGroup group} (an image conversion starts one per source layer, so
 * a layer's blob depends on that layer only and is shared by every image built on it). A blob size
 * cap starts a new blob within a group; chunks stay deduplicated across the group's blobs.
 *
 * <p>Failure policy: the first error (I/O, interrupted) stops the pipeline; {@link #submit} and
 * {@link #finish} rethrow it, and {@link ImageOutput#close} removes the unfinished blob.
 */
public final class ChunkStore implements AutoCloseable {
  /**
   * One data blob as stored: its EROFS device id (1-based), descriptor (a compressed blob's carries
   * its media type and uncompressed-size annotation), digest table, and the sha256 of the device it
   * holds (= the blob's digest when raw; the OCI diff_id).
   */
  public record StoredBlob(
      int device, Descriptor blob, ChunkDigestTable table, Digest uncompressedDigest) {
    /** The EROFS device size: what the device table and flattened layout count. */
    public long deviceSize() {
      return table.blobSize();
    }
  }

  private record ShaKey(long a, long b, long c, long d) {
    static ShaKey of(byte[] s) {
      ByteBuffer b = ByteBuffer.wrap(s);
      return new ShaKey(b.getLong(0), b.getLong(8), b.getLong(16), b.getLong(24));
    }
  }

  /** A hashed chunk; {@code frame} holds its compressed bytes (null when stored raw or a hole). */
  private record Hashed(
      ErofsNode file, int chunkNo, ByteBuffer buf, boolean zero, byte[] sha, ByteBuffer frame) {}

  private static final Object GROUP = new Object();
  private static final Object END = new Object();
  private static final int BLOCK = 4096;

  private final ImageOutput output;
  private final int chunkSize;
  private final long blobCap;
  private final Progress progress;
  private final BlockingQueue<ByteBuffer> pool;
  private final BlockingQueue<Object> ordered;
  private final ExecutorService hashers;
  private final Thread committer;
  private final ByteBuffer zeros;
  private final Compression compression;
  private final int level;

  /**
   * Each pooled chunk buffer's frame buffer (compressed stores only); filled once, then only read.
   */
  private final Map<ByteBuffer, ByteBuffer> frameBuffers = new IdentityHashMap<>();

  private final List<ZstdCodec.Compressor> compressors = new ArrayList<>();
  private final ThreadLocal<ZstdCodec.Compressor> compressor;
  private final List<StoredBlob> blobs = new ArrayList<>();
  private final Map<ShaKey, Long> stored = new HashMap<>();
  private volatile Throwable failure;
  private OpenBlob current;
  private boolean finished;

  private final class OpenBlob {
    final Path path;
    final FileChannel channel;
    // An aborted pack leaves these to the Cleaner: the committer may still be using them.
    final Sha256Stream digest = new Sha256Stream();
    final Sha256Stream uncompressed = compression == Compression.NONE ? null : new Sha256Stream();
    final ChunkDigestTable.Builder table = new ChunkDigestTable.Builder(compression);
    final int device;

    OpenBlob(int device) throws IOException {
      this.device = device;
      this.path = output.newScratchFile();
      this.channel = FileChannel.open(path, StandardOpenOption.WRITE);
    }
  }

  /** Raw chunks (chunk digest tables version 1). */
  public ChunkStore(
      ImageOutput output, int chunkSize, long blobCap, int threads, Progress progress) {
    this(output, chunkSize, blobCap, threads, Compression.NONE, ZstdCodec.DEFAULT_LEVEL, progress);
  }

  /**
   * @param chunkSize power of two, 4 KiB to 16 MiB
   * @param blobCap start a new blob before its stored size would exceed this many bytes (0 = no
   *     cap; else ≥ chunkSize)
   * @param compression how chunks are stored
   * @param level the zstd level (ignored for {@link Compression#NONE})
   */
  public ChunkStore(
      ImageOutput output,
      int chunkSize,
      long blobCap,
      int threads,
      Compression compression,
      int level,
      Progress progress) {
    if (Integer.bitCount(chunkSize) != 1 || chunkSize < BLOCK || chunkSize > (16 << 20)) {
      throw new IllegalArgumentException(
          "chunk size must be a power of two from 4 KiB to 16 MiB: " + chunkSize);
    }
    if (blobCap != 0 && blobCap < chunkSize) {
      throw new IllegalArgumentException(
          "blob size cap " + blobCap + " is smaller than the chunk size");
    }
    this.output = output;
    this.chunkSize = chunkSize;
    this.blobCap = blobCap;
    this.progress = progress;
    this.compression = compression;
    this.level = level;
    if (compression != Compression.NONE) {
      new ZstdCodec.Compressor(level).close(); // a bad level fails here, not on a worker
      ZstdCodec.load();
    }
    this.compressor =
        ThreadLocal.withInitial(
            () -> {
              ZstdCodec.Compressor c = new ZstdCodec.Compressor(this.level);
              synchronized (compressors) {
                compressors.add(c);
              }
              return c;
            });
    int n = Math.max(1, threads);
    int buffers = Math.max(n + 2, Math.min(4 * n + 4, (64 << 20) / chunkSize));
    this.pool = new ArrayBlockingQueue<>(buffers);
    for (int i = 0; i < buffers; i++) {
      ByteBuffer b = ByteBuffer.allocateDirect(chunkSize);
      pool.add(b);
      if (compression != Compression.NONE) {
        frameBuffers.put(b, ByteBuffer.allocateDirect((int) ZstdCodec.maxFrameLength(chunkSize)));
      }
    }
    this.ordered = new ArrayBlockingQueue<>(buffers + 2);
    this.hashers = Executors.newFixedThreadPool(n, DaemonThreads.numbered("lazypull-hash-"));
    this.zeros = ByteBuffer.allocateDirect(chunkSize);
    this.committer = new Thread(this::commitLoop, "lazypull-blob-writer");
    committer.setDaemon(true);
    committer.start();
  }

  public int chunkSize() {
    return chunkSize;
  }

  public Compression compression() {
    return compression;
  }

  /**
   * A cleared chunk buffer from the pool; blocks while every buffer is in flight (that is the
   * memory bound).
   */
  public ByteBuffer acquire() throws IOException {
    try {
      while (true) {
        checkFailure(); // re-checked while waiting: a failed pipeline may never return its buffers
        ByteBuffer b = pool.poll(100, TimeUnit.MILLISECONDS);
        if (b != null) {
          return b.clear();
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
  }

  /** Returns a buffer that will not be submitted. */
  public void release(ByteBuffer buf) {
    pool.add(buf);
  }

  /**
   * Submits chunk {@code chunkNo} of {@code file}: {@code buf} (from {@link #acquire}) holds its
   * bytes in [0, limit). The location lands in {@code file.chunks[chunkNo]} once committed.
   */
  public void submit(ErofsNode file, int chunkNo, ByteBuffer buf) throws IOException {
    checkFailure();
    buf.flip();
    Future<Hashed> f = hashers.submit(() -> hash(file, chunkNo, buf));
    enqueue(f);
  }

  /** Starts a new dedup group (and so a new blob for the next stored chunk). */
  public void startGroup() throws IOException {
    enqueue(GROUP);
  }

  private void enqueue(Object item) throws IOException {
    try {
      while (!ordered.offer(item, 100, TimeUnit.MILLISECONDS)) {
        if (!committer.isAlive()) {
          checkFailure();
          throw new IOException("the blob writer stopped");
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
  }

  private Hashed hash(ErofsNode file, int chunkNo, ByteBuffer buf) {
    int len = buf.limit();
    int padded = (len + BLOCK - 1) / BLOCK * BLOCK;
    buf.limit(padded);
    for (int i = len; i < padded; i++) {
      buf.put(i, (byte) 0);
    }
    boolean zero = buf.mismatch(zeros.duplicate().limit(padded)) < 0;
    byte[] digest = null;
    ByteBuffer frame = null;
    if (!zero) {
      digest = Digest.sha256Of(buf);
      if (compression != Compression.NONE) {
        frame = frameBuffers.get(buf).clear();
        compressor.get().compress(buf.duplicate(), frame);
        frame.flip();
      }
    }
    progress.bytesHashed(len);
    return new Hashed(file, chunkNo, buf, zero, digest, frame);
  }

  private void commitLoop() {
    try {
      while (true) {
        Object item = ordered.take();
        if (item == END) {
          return;
        }
        if (failure != null) {
          drop(item);
          continue;
        }
        if (item == GROUP) {
          closeBlob();
          stored.clear();
          continue;
        }
        @SuppressWarnings("unchecked")
        Hashed h = ((Future<Hashed>) item).get();
        try {
          commit(h);
        } finally {
          pool.add(h.buf);
        }
      }
    } catch (Throwable t) {
      if (failure == null) {
        failure = t instanceof ExecutionException && t.getCause() != null ? t.getCause() : t;
      }
      drainAfterFailure();
    }
  }

  private void drop(Object item) {
    if (item instanceof Future<?> f) {
      try {
        pool.add(((Hashed) f.get()).buf);
      } catch (Exception e) {
        // the buffer of a failed hash is lost; the pipeline is failing anyway
      }
    }
  }

  private void drainAfterFailure() {
    while (true) {
      try {
        Object item = ordered.take();
        if (item == END) {
          return;
        }
        drop(item);
      } catch (InterruptedException e) {
        return;
      }
    }
  }

  private void commit(Hashed h) throws IOException {
    if (h.zero) {
      h.file.chunks[h.chunkNo] = ErofsNode.HOLE;
      return;
    }
    ShaKey key = ShaKey.of(h.sha);
    Long loc = stored.get(key);
    if (loc == null) {
      int len = h.buf.remaining();
      int frameLen = h.frame != null ? h.frame.remaining() : len;
      if (current != null
          && blobCap > 0
          && current.table.storedSize() > 0
          && current.table.storedSize() + frameLen > blobCap) {
        closeBlob();
      }
      if (current == null) {
        current = new OpenBlob(blobs.size() + 1);
      }
      long block = current.table.blobSize() / BLOCK;
      ByteBuffer data = h.frame != null ? h.frame.duplicate() : h.buf.duplicate();
      int storedLen = data.remaining();
      current.digest.update(data.duplicate());
      if (h.frame != null) {
        current.uncompressed.update(h.buf.duplicate());
      }
      long pos = current.table.storedSize();
      while (data.hasRemaining()) {
        pos += current.channel.write(data, pos);
      }
      if (h.frame != null) {
        current.table.add(len, storedLen, h.sha);
      } else {
        current.table.add(len, h.sha);
      }
      loc = ErofsNode.chunkLocation(current.device, block);
      stored.put(key, loc);
      progress.chunkStored(storedLen);
    } else {
      progress.chunkDeduplicated();
    }
    h.file.chunks[h.chunkNo] = loc;
  }

  private void closeBlob() throws IOException {
    if (current == null) {
      return;
    }
    OpenBlob b = current;
    current = null;
    b.channel.close();
    Digest digest = new Digest(HexFormat.of().formatHex(b.digest.digest()));
    ChunkDigestTable table = b.table.build();
    if (compression == Compression.NONE) {
      Descriptor d = output.putFile(b.path, MediaTypes.EROFS_BLOB, digest);
      blobs.add(new StoredBlob(b.device, d, table, digest));
      progress.blobDone(d);
      return;
    }
    Descriptor put = output.putFile(b.path, MediaTypes.EROFS_BLOB_ZSTD, digest);
    Descriptor d =
        new Descriptor(
            MediaTypes.EROFS_BLOB_ZSTD,
            put.digest(),
            put.size(),
            Map.of(LazyManifests.ANNOTATION_UNCOMPRESSED_SIZE, Long.toString(table.blobSize())),
            null);
    blobs.add(
        new StoredBlob(
            b.device, d, table, new Digest(HexFormat.of().formatHex(b.uncompressed.digest()))));
    progress.blobDone(d);
  }

  private void checkFailure() throws IOException {
    Throwable t = failure;
    if (t != null) {
      throw t instanceof IOException io
          ? new IOException(io.getMessage(), io)
          : new IOException("storing file data failed: " + t, t);
    }
  }

  /**
   * Waits for every submitted chunk, closes the last blob and returns all blobs in device order.
   */
  public List<StoredBlob> finish() throws IOException {
    if (!finished) {
      finished = true;
      enqueue(END);
      try {
        committer.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted", e);
      }
      hashers.shutdown();
      checkFailure();
      closeBlob();
    }
    checkFailure();
    return List.copyOf(blobs);
  }

  @Override
  public void close() {
    if (!finished) {
      finished = true;
      failure = failure != null ? failure : new IOException("aborted");
      try {
        ordered.offer(END, 10, TimeUnit.SECONDS);
        committer.join(10_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    hashers.shutdownNow();
    try {
      hashers.awaitTermination(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    synchronized (compressors) {
      for (ZstdCodec.Compressor c : compressors) {
        c.close();
      }
      compressors.clear();
    }
    if (current != null) {
      try {
        current.channel.close();
      } catch (IOException e) {
        // the output removes the scratch file
      }
    }
  }
}

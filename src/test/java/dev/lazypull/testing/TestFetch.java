package dev.lazypull.testing;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.fetch.BlobCacheFile;
import dev.lazypull.fetch.BlobRef;
import dev.lazypull.fetch.ChunkFetcher;
import dev.lazypull.fetch.ChunkMap;
import dev.lazypull.fetch.ChunkSink;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.fetch.FetchStats;
import dev.lazypull.image.Descriptor;
import dev.lazypull.sys.AlignedBuffers;
import java.nio.ByteBuffer;
import java.time.Duration;

/** Fetch cores and blob references sized for tests. */
public final class TestFetch {
  /** A reference whose origin is local layouts (the tests' in-memory and layout sources). */
  public static final String LOCAL = "oci:/test";

  private TestFetch() {}

  /**
   * 4 threads, {@code chunk}-byte chunks, merges up to {@code merge}, no read-ahead, a 10 s
   * deadline.
   */
  public static FetchSettings settings(int chunk, int merge) {
    return new FetchSettings(4, chunk, merge, 0, Duration.ofSeconds(10), chunk);
  }

  /** A core over {@link #settings}, its tables kept in memory. */
  public static FetchCore core(int chunk, int merge) {
    return new FetchCore(settings(chunk, merge), new FetchStats(), null);
  }

  /** A data blob without a digest table (fetched unverified, in fixed chunks). */
  public static BlobRef ref(Descriptor blob) {
    return BlobRef.data(blob, null, LOCAL);
  }

  /** A data blob verified against {@code table}. */
  public static BlobRef ref(Descriptor blob, Descriptor table) {
    return BlobRef.data(blob, table, LOCAL);
  }

  /**
   * A sink into a byte array that held nothing before (tests of the fetch path outside a cache
   * file).
   */
  public static final class MemorySink implements ChunkSink {
    public final byte[] file;

    public MemorySink(long size) {
      file = new byte[(int) AlignedBuffers.roundUp(size, AlignedBuffers.ALIGNMENT)];
    }

    @Override
    public synchronized void write(ByteBuffer buf, long offset) {
      buf.duplicate().get(file, (int) offset, buf.remaining());
    }

    @Override
    public boolean isOpen() {
      return true;
    }

    @Override
    public long seekData(long offset) {
      return -1;
    }

    @Override
    public long seekHole(long offset) {
      return offset;
    }
  }

  /** The fetcher {@code core} builds for {@code ref} into {@code sink}, once set up. */
  public static ChunkFetcher fetcher(
      FetchCore core, BlobRef ref, BlobSource source, ChunkSink sink) {
    return core.open(ref, source, sink).join();
  }

  /** The file's chunk map, once its fetcher is set up. */
  public static ChunkMap map(BlobCacheFile f) {
    return f.fetcher().join().map();
  }
}

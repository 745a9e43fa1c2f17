package dev.lazypull.nbd.device;

import dev.lazypull.fetch.BlobCacheFile;
import dev.lazypull.nbd.server.ExportDevice;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * An {@link ExportDevice} composed of segments — ranges backed by a blob cache file or by bytes
 * held in memory (a patched bootstrap head) — with zeros everywhere between them. This is how the
 * flattened EROFS device (the bootstrap at block 0, each blob at its mapped block) and the raw
 * single-blob export are both served.
 */
public final class SegmentDevice implements ExportDevice {
  private static final CompletableFuture<Void> DONE = CompletableFuture.completedFuture(null);
  private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(64 << 10).asReadOnlyBuffer();

  /** What a segment's bytes come from. */
  public interface Backing {
    CompletableFuture<Void> ensure(long offset, long length);

    void read(ByteBuffer dst, long offset) throws IOException;
  }

  /** Device bytes {@code [start, start+length)} are backing bytes {@code [backingOffset, ...)}. */
  public record Segment(long start, long length, Backing backing, long backingOffset) {
    public Segment {
      if (start < 0 || length <= 0 || backingOffset < 0) {
        throw new IllegalArgumentException(
            "segment " + start + "+" + length + " @" + backingOffset);
      }
    }

    long end() {
      return start + length;
    }
  }

  private final long size;
  private final Segment[] segments;

  /**
   * @param segments sorted by start, not overlapping, inside {@code [0, size)}
   */
  public SegmentDevice(long size, List<Segment> segments) {
    this.size = size;
    this.segments = segments.toArray(new Segment[0]);
    long prevEnd = 0;
    for (Segment s : this.segments) {
      if (s.start() < prevEnd || s.end() > size) {
        throw new IllegalArgumentException(
            "segment "
                + s.start()
                + "+"
                + s.length()
                + " overlaps or lies outside "
                + "["
                + prevEnd
                + ", "
                + size
                + ")");
      }
      prevEnd = s.end();
    }
  }

  /** A backing over a blob cache file. */
  public static Backing file(BlobCacheFile file) {
    return new Backing() {
      @Override
      public CompletableFuture<Void> ensure(long offset, long length) {
        return file.ensure(offset, length);
      }

      @Override
      public void read(ByteBuffer dst, long offset) throws IOException {
        file.read(dst, offset);
      }
    };
  }

  /** A backing over bytes in memory (always present). */
  public static Backing bytes(byte[] bytes) {
    return new Backing() {
      @Override
      public CompletableFuture<Void> ensure(long offset, long length) {
        return DONE;
      }

      @Override
      public void read(ByteBuffer dst, long offset) {
        dst.put(bytes, (int) offset, dst.remaining());
      }
    };
  }

  @Override
  public long size() {
    return size;
  }

  /** Index of the first segment that ends after {@code offset}. */
  private int firstEndingAfter(long offset) {
    int lo = 0;
    int hi = segments.length;
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (segments[mid].end() <= offset) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  private void checkRange(long offset, long length) {
    if (offset < 0 || length < 0 || offset > size || length > size - offset) {
      throw new IllegalArgumentException(
          "range " + offset + "+" + length + " outside the device's " + size + " bytes");
    }
  }

  @Override
  public List<Run> runs(long offset, long length) {
    checkRange(offset, length);
    List<Run> out = new ArrayList<>();
    long end = offset + length;
    long pos = offset;
    for (int i = firstEndingAfter(offset); pos < end; i++) {
      long nextData = i < segments.length ? Math.min(Math.max(segments[i].start(), pos), end) : end;
      if (nextData > pos) {
        add(out, pos, nextData - pos, true);
        pos = nextData;
      }
      if (i < segments.length && pos < end) {
        long stop = Math.min(segments[i].end(), end);
        add(out, pos, stop - pos, false);
        pos = stop;
      }
    }
    return out;
  }

  private static void add(List<Run> out, long offset, long length, boolean zero) {
    if (!out.isEmpty()) {
      Run last = out.get(out.size() - 1);
      if (last.zero() == zero && last.end() == offset) {
        out.set(out.size() - 1, new Run(last.offset(), last.length() + length, zero));
        return;
      }
    }
    out.add(new Run(offset, length, zero));
  }

  @Override
  public CompletableFuture<Void> prepare(long offset, long length) {
    checkRange(offset, length);
    long end = offset + length;
    CompletableFuture<Void> only = null;
    List<CompletableFuture<Void>> waits = null;
    for (int i = firstEndingAfter(offset); i < segments.length && segments[i].start() < end; i++) {
      Segment s = segments[i];
      long from = Math.max(offset, s.start());
      long to = Math.min(end, s.end());
      CompletableFuture<Void> f =
          s.backing().ensure(s.backingOffset() + from - s.start(), to - from);
      if (f.isDone() && !f.isCompletedExceptionally()) {
        continue;
      }
      if (only == null) {
        only = f;
      } else {
        if (waits == null) {
          waits = new ArrayList<>();
          waits.add(only);
        }
        waits.add(f);
      }
    }
    if (only == null) {
      return DONE;
    }
    return waits == null
        ? only
        : CompletableFuture.allOf(waits.toArray(new CompletableFuture<?>[0]));
  }

  @Override
  public void read(long offset, ByteBuffer dst) throws IOException {
    long length = dst.remaining();
    checkRange(offset, length);
    long end = offset + length;
    long pos = offset;
    for (int i = firstEndingAfter(offset); pos < end; i++) {
      long nextData = i < segments.length ? Math.min(Math.max(segments[i].start(), pos), end) : end;
      zeros(dst, nextData - pos);
      pos = nextData;
      if (i < segments.length && pos < end) {
        Segment s = segments[i];
        long stop = Math.min(s.end(), end);
        int limit = dst.limit();
        dst.limit(dst.position() + (int) (stop - pos));
        try {
          s.backing().read(dst, s.backingOffset() + pos - s.start());
        } finally {
          dst.limit(limit);
        }
        pos = stop;
      }
    }
  }

  private static void zeros(ByteBuffer dst, long n) {
    while (n > 0) {
      int k = (int) Math.min(n, ZEROS.capacity());
      dst.put(ZEROS.duplicate().limit(k));
      n -= k;
    }
  }
}

package dev.lazypull.gzindex;

import java.io.IOException;
import java.security.MessageDigest;
import java.util.List;

/**
 * A layer's checkpoints (from its {@link Zinfo}) joined with its {@link SpanTable}, checked against
 * each other: what {@link SpanReader} serves reads from. Span {@code i} starts at checkpoint {@code
 * i}; its compressed bytes are {@code [compressedStart(i), compressedEnd(i))}, its uncompressed
 * bytes {@code [uncompressedStart(i), uncompressedEnd(i))}.
 */
public final class GzipIndex {
  private final Zinfo zinfo;
  private final SpanTable table;
  private final List<Checkpoint> cps;

  private GzipIndex(Zinfo zinfo, SpanTable table) {
    this.zinfo = zinfo;
    this.table = table;
    this.cps = zinfo.checkpoints();
  }

  /** Joins a zinfo and its span table; the zinfo must have been read with the table's sizes. */
  public static GzipIndex of(Zinfo zinfo, SpanTable table) throws IndexFormatException {
    if (!MessageDigest.isEqual(zinfo.sha256(), table.zinfoSha256())) {
      throw new IndexFormatException("the span table belongs to another zinfo");
    }
    if (zinfo.spanSize() != table.spanSize()) {
      throw new IndexFormatException(
          "zinfo span size " + zinfo.spanSize() + ", span table " + table.spanSize());
    }
    if (zinfo.checkpoints().size() != table.spanDigests().size()) {
      throw new IndexFormatException(
          "zinfo has "
              + zinfo.checkpoints().size()
              + " checkpoints, span table "
              + table.spanDigests().size()
              + " spans");
    }
    for (Checkpoint cp : zinfo.checkpoints()) {
      if (cp.in() > table.compressedSize() || cp.out() > table.uncompressedSize()) {
        throw new IndexFormatException(
            "zinfo checkpoint " + cp + " is outside the layer the span table describes");
      }
    }
    return new GzipIndex(zinfo, table);
  }

  /** Decodes a span table and the zinfo it names from memory. */
  public static GzipIndex read(byte[] zinfo, byte[] spanTable) throws IndexFormatException {
    SpanTable t = SpanTable.decode(spanTable);
    return of(Zinfo.read(zinfo, t.compressedSize(), t.uncompressedSize()), t);
  }

  public int spans() {
    return cps.size();
  }

  public Checkpoint checkpoint(int i) {
    return cps.get(i);
  }

  public SpanTable table() {
    return table;
  }

  public long compressedSize() {
    return table.compressedSize();
  }

  public long uncompressedSize() {
    return table.uncompressedSize();
  }

  public long compressedStart(int i) {
    return cps.get(i).firstByte();
  }

  public long compressedEnd(int i) {
    return i + 1 < cps.size() ? cps.get(i + 1).in() : table.compressedSize();
  }

  public long uncompressedStart(int i) {
    return cps.get(i).out();
  }

  public long uncompressedEnd(int i) {
    return i + 1 < cps.size() ? cps.get(i + 1).out() : table.uncompressedSize();
  }

  /** The span holding uncompressed offset {@code u}: the last checkpoint at or before it. */
  public int spanAt(long u) {
    if (u < 0 || u >= table.uncompressedSize()) {
      throw new IndexOutOfBoundsException(
          "offset " + u + " outside [0, " + table.uncompressedSize() + ")");
    }
    int lo = 0;
    int hi = cps.size() - 1;
    while (lo < hi) {
      int mid = (lo + hi + 1) >>> 1;
      if (cps.get(mid).out() <= u) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo;
  }

  public byte[] spanDigest(int i) {
    return table.spanDigests().get(i).clone();
  }

  boolean spanDigestMatches(int i, byte[] digest) {
    return MessageDigest.isEqual(table.spanDigests().get(i), digest);
  }

  /** Reads checkpoint {@code i}'s window into {@code dst} (32 KiB). */
  public void window(int i, byte[] dst) throws IOException {
    zinfo.window(i, dst);
  }
}

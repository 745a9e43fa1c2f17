package dev.lazypull.gzindex;

import java.io.IOException;
import java.security.MessageDigest;
import java.util.Objects;
import java.util.concurrent.atomic.LongAdder;

/**
 * Serves uncompressed byte ranges of a gzip layer from its {@link GzipIndex} and ranged reads of
 * the compressed bytes: a read of {@code [u, u + len)} starts at the last checkpoint at or before
 * {@code u}, fetches the compressed bytes of the spans it covers (whole spans, consecutive ones in
 * one range read of at most {@code maxFetch} bytes), checks each span's sha256 before decoding a
 * bit of it, inflates from the checkpoint's bit offset with its window as history (across gzip
 * member ends, if a span holds several), discards up to {@code u} and stops at {@code u + len}.
 *
 * <p>It also checks the index against the stream: every checkpoint passed must fall on a block
 * boundary with the recorded output offset, and the stream must not end early — otherwise {@link
 * GzipFormatException}. Thread-safe: each read has its own decoder (about 400 KiB of buffers) and
 * fetch buffer.
 */
public final class SpanReader {
  public static final int DEFAULT_MAX_FETCH = 64 << 20;

  private final GzipIndex index;
  private final ByteRangeReader source;
  private final int maxFetch;
  private final boolean verifySpanEnds;
  private final LongAdder fetched = new LongAdder();
  private final LongAdder inflated = new LongAdder();

  public SpanReader(GzipIndex index, ByteRangeReader source) {
    this(index, source, DEFAULT_MAX_FETCH, true);
  }

  /**
   * @param maxFetch the largest range read (and buffer); a span bigger than this cannot be read
   * @param verifySpanEnds inflate to the end of each span read and check it meets the next
   *     checkpoint
   */
  public SpanReader(GzipIndex index, ByteRangeReader source, int maxFetch, boolean verifySpanEnds) {
    this.index = index;
    this.source = source;
    this.maxFetch = maxFetch;
    this.verifySpanEnds = verifySpanEnds;
  }

  /** Compressed bytes fetched so far. */
  public long compressedBytesFetched() {
    return fetched.sum();
  }

  /** Uncompressed bytes produced so far (including those discarded before the start of a read). */
  public long bytesInflated() {
    return inflated.sum();
  }

  public byte[] read(long offset, int len) throws IOException {
    byte[] b = new byte[len];
    read(offset, b, 0, len);
    return b;
  }

  /**
   * Reads exactly the uncompressed bytes {@code [offset, offset + len)} into {@code
   * dst[off..off+len)}. With {@code verifySpanEnds} (the default) it inflates on to the end of the
   * last span read and checks the stream reaches the next checkpoint exactly (or, in the last span,
   * ends with the size the index records), so a wrong checkpoint can never hand out wrong bytes;
   * without, it stops at {@code offset + len}.
   */
  public void read(long offset, byte[] dst, int off, int len) throws IOException {
    Objects.checkFromIndexSize(off, len, dst.length);
    if (offset < 0 || offset > index.uncompressedSize() - len) {
      throw new IllegalArgumentException(
          "range "
              + offset
              + "+"
              + len
              + " outside the layer's "
              + index.uncompressedSize()
              + " uncompressed bytes");
    }
    if (len == 0) {
      return;
    }
    long end = offset + len;
    int first = index.spanAt(offset);
    int last = index.spanAt(end - 1);
    boolean lastSpan = last == index.spans() - 1;
    long stopOut = verifySpanEnds ? index.uncompressedEnd(last) : end;
    Checkpoint cp = index.checkpoint(first);
    DeflateDecoder dec = new DeflateDecoder(new Spans(first, last), cp.firstByte(), null);
    byte[] window = new byte[Zinfo.WINDOW_SIZE];
    index.window(first, window);
    dec.startAt(cp.bits() == 0 ? 0 : 8 - cp.bits(), window, cp.out());
    if (!verifySpanEnds) {
      dec.limit(end);
    }
    int k = first; // the next checkpoint the decoder must pass through
    long produced = 0;
    try {
      while (true) {
        int ev = dec.next();
        long pos = dec.bitPosition();
        if (k < index.spans() && pos > index.checkpoint(k).bitPosition()) {
          throw mismatch(k, "no block boundary there");
        }
        if (verifySpanEnds && dec.outPosition() > stopOut) {
          throw new GzipFormatException(
              "span "
                  + last
                  + " inflates past uncompressed offset "
                  + stopOut
                  + " where the index says it ends");
        }
        if (ev == DeflateDecoder.BOUNDARY) {
          if (k < index.spans() && pos == index.checkpoint(k).bitPosition()) {
            if (dec.outPosition() != index.checkpoint(k).out()) {
              throw mismatch(
                  k, "the stream is at uncompressed offset " + dec.outPosition() + " there");
            }
            k++;
            if (k > last + 1) {
              break; // verified the start of the span after the last one read
            }
          }
          continue;
        }
        if (ev == DeflateDecoder.LIMIT) {
          break;
        }
        int s = dec.dataStart();
        int e = dec.dataEnd();
        produced += e - s;
        long to = dec.outPosition();
        long from = to - (e - s);
        long a = Math.max(from, offset);
        long b = Math.min(to, end);
        if (a < b) {
          System.arraycopy(
              dec.buffer(), s + (int) (a - from), dst, off + (int) (a - offset), (int) (b - a));
        }
        if (ev == DeflateDecoder.END) {
          if (!verifySpanEnds && to >= end) {
            break;
          }
          GzipMember.readTrailer(dec, 0);
          if (dec.atEnd()) {
            if (to < end || (verifySpanEnds && (!lastSpan || to != index.uncompressedSize()))) {
              throw new GzipFormatException(
                  "gzip stream ends at uncompressed offset "
                      + to
                      + " (compressed "
                      + (dec.bitPosition() >>> 3)
                      + "); the index says "
                      + (lastSpan
                          ? "it ends at " + index.uncompressedSize()
                          : "span " + (last + 1) + " starts at " + stopOut));
            }
            break;
          }
          GzipMember.readHeader(dec, 0);
          dec.startStream(to);
        }
      }
    } finally {
      inflated.add(produced);
    }
  }

  private GzipFormatException mismatch(int k, String why) {
    return new GzipFormatException(
        "the stream does not match its index at checkpoint "
            + k
            + " "
            + index.checkpoint(k)
            + ": "
            + why);
  }

  /** The compressed bytes of spans first..last, fetched in groups and verified span by span. */
  private final class Spans implements DeflateDecoder.Input {
    private int next;
    private final int last;
    private byte[] buf = new byte[0];
    private int pos;
    private long delivered; // compressed offset of the next byte to hand out

    Spans(int first, int last) {
      this.next = first;
      this.last = last;
      this.delivered = index.compressedStart(first);
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (pos == buf.length) {
        if (next > last) {
          return -1;
        }
        fetch();
      }
      int n = Math.min(len, buf.length - pos);
      System.arraycopy(buf, pos, b, off, n);
      pos += n;
      return n;
    }

    private void fetch() throws IOException {
      int g = next;
      long start = index.compressedStart(g);
      if (index.compressedEnd(g) - start > maxFetch) {
        throw new GzipFormatException(
            "span "
                + g
                + " is "
                + (index.compressedEnd(g) - start)
                + " compressed bytes, over the "
                + maxFetch
                + "-byte fetch limit");
      }
      while (g < last && index.compressedEnd(g + 1) - start <= maxFetch) {
        g++;
      }
      long end = index.compressedEnd(g);
      byte[] data = new byte[(int) (end - start)];
      source.readFully(start, data, 0, data.length);
      fetched.add(data.length);
      MessageDigest md = Zinfo.newSha256();
      for (int i = next; i <= g; i++) {
        md.update(
            data,
            (int) (index.compressedStart(i) - start),
            (int) (index.compressedEnd(i) - index.compressedStart(i)));
        if (!index.spanDigestMatches(i, md.digest())) {
          throw new SpanIntegrityException(
              "span "
                  + i
                  + " (compressed bytes "
                  + index.compressedStart(i)
                  + ".."
                  + index.compressedEnd(i)
                  + ") does not match its sha256 in the index");
        }
      }
      buf = data;
      pos = (int) (delivered - start);
      delivered = end;
      next = g + 1;
    }
  }
}

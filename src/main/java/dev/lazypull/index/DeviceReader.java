package dev.lazypull.index;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.gzindex.GzipIndex;
import dev.lazypull.gzindex.SpanIntegrityException;
import dev.lazypull.gzindex.SpanReader;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.MediaTypes;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ReadableByteChannel;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.logging.Logger;

/**
 * Serves byte ranges of one virtual device from the unmodified layer its {@link DeviceMap} names:
 * file extents are copied from the layer's uncompressed tar — for a gzip layer out of whole
 * inflated spans ({@link SpanReader}: span digests checked before a bit is inflated; {@link
 * SpanCache} keeps recent spans), for a plain tar by ranged reads of the layer — and the padding
 * between them is zeros. It produces bytes only; the fetch core checks each digest-table entry of
 * the device before it caches a byte of it.
 */
final class DeviceReader {
  private static final Logger LOG = Logger.getLogger(DeviceReader.class.getName());

  /** Device bytes assembled at a time. */
  static final int WINDOW = 1 << 20;

  /**
   * Tar bytes between two extents read through rather than skipped with a second read (headers,
   * small entries).
   */
  static final int MAX_GAP = 64 << 10;

  /**
   * The most uncompressed bytes a span may hold (zlib's blocks end within 4.2 MiB of a 4 MiB span).
   */
  static final long MAX_SPAN = 64L << 20;

  /** Uncompressed tar bytes of the layer. */
  interface Tar {
    void read(long tarOffset, byte[] dst, int off, int len) throws IOException;
  }

  private final DeviceMap map;
  private final Tar tar;
  private final String what;

  DeviceReader(DeviceMap map, Tar tar, String what) {
    this.map = map;
    this.tar = tar;
    this.what = what;
  }

  DeviceMap map() {
    return map;
  }

  /** The layer's descriptor as the image lists it (the media type only tells how to read it). */
  static Descriptor layerOf(DeviceMap map) {
    return new Descriptor(
        map.gzip() ? MediaTypes.OCI_LAYER_TAR_GZIP : MediaTypes.OCI_LAYER_TAR,
        map.layerDigest(),
        map.layerSize());
  }

  /** A plain tar layer read by ranges of {@code source}. */
  static Tar plain(DeviceMap map, BlobSource source) {
    Descriptor layer = layerOf(map);
    return (offset, dst, off, len) -> readFully(source, layer, offset, dst, off, len, false);
  }

  /**
   * A gzip layer: whole spans through the cache, each loaded by {@link SpanReader} over ranged
   * reads.
   */
  static Tar gzip(DeviceMap map, GzipIndex index, BlobSource source, SpanCache cache)
      throws InvalidIndexException {
    Descriptor layer = layerOf(map);
    if (index.compressedSize() != map.layerSize()
        || index.uncompressedSize() != map.tarSize()
        || !Arrays.equals(
            index.table().layerSha256(), HexFormat.of().parseHex(map.layerDigest().hex()))) {
      throw new InvalidIndexException(
          "the span table of layer " + map.layerDigest() + " describes another layer");
    }
    for (int i = 0; i < index.spans(); i++) {
      long n = index.uncompressedEnd(i) - index.uncompressedStart(i);
      if (n > MAX_SPAN
          || index.compressedEnd(i) - index.compressedStart(i) > SpanReader.DEFAULT_MAX_FETCH) {
        throw new InvalidIndexException(
            "span "
                + i
                + " of layer "
                + map.layerDigest()
                + " holds "
                + n
                + " uncompressed bytes (limit "
                + MAX_SPAN
                + ")");
      }
    }
    SpanReader reader =
        new SpanReader(
            index,
            (offset, dst, off, len) -> readFully(source, layer, offset, dst, off, len, false));
    SpanReader origin =
        new SpanReader(
            index,
            (offset, dst, off, len) -> readFully(source, layer, offset, dst, off, len, true));
    return (offset, dst, off, len) -> {
      long end = offset + len;
      for (int s = index.spanAt(offset); offset < end; s++) {
        long from = index.uncompressedStart(s);
        int span = s;
        byte[] bytes =
            cache.get(
                new SpanCache.Key(map.layerDigest(), s),
                () -> {
                  int n = (int) (index.uncompressedEnd(span) - from);
                  try {
                    return reader.read(from, n);
                  } catch (SpanIntegrityException e) { // a mirror's bad copy: the origin decides
                    LOG.warning(e.getMessage() + "; reading it again from the origin");
                    return origin.read(from, n);
                  }
                });
        int at = (int) (offset - from);
        int n = (int) Math.min(end - offset, bytes.length - at);
        System.arraycopy(bytes, at, dst, off, n);
        off += n;
        offset += n;
      }
    };
  }

  private static void readFully(
      BlobSource source,
      Descriptor layer,
      long offset,
      byte[] dst,
      int off,
      int len,
      boolean origin)
      throws IOException {
    try (ReadableByteChannel ch =
        origin
            ? source.openRangeFromOrigin(layer, offset, len)
            : source.openRange(layer, offset, len)) {
      ByteBuffer b = ByteBuffer.wrap(dst, off, len);
      while (b.hasRemaining()) {
        if (ch.read(b) < 0) {
          throw new IOException(
              source.describe()
                  + ": layer "
                  + layer.digest()
                  + " ended at "
                  + (offset + b.position() - off));
        }
      }
    }
  }

  /** Device bytes {@code [offset, offset + length)} as a channel assembled a window at a time. */
  ReadableByteChannel open(long offset, long length) throws IOException {
    if (offset < 0 || length < 0 || offset > map.deviceSize() - length) {
      throw new IOException(
          what
              + ": range "
              + offset
              + "+"
              + length
              + " outside the device's "
              + map.deviceSize()
              + " bytes");
    }
    return new ReadableByteChannel() {
      private long pos = offset;
      private final long end = offset + length;
      private final byte[] window = new byte[(int) Math.min(WINDOW, Math.max(length, 1))];
      private int wpos;
      private int wlen;
      private boolean open = true;

      @Override
      public int read(ByteBuffer dst) throws IOException {
        if (!open) {
          throw new ClosedChannelException();
        }
        if (wpos == wlen) {
          if (pos == end) {
            return -1;
          }
          wlen = (int) Math.min(window.length, end - pos);
          fill(pos, window, wlen);
          pos += wlen;
          wpos = 0;
        }
        int n = Math.min(dst.remaining(), wlen - wpos);
        dst.put(window, wpos, n);
        wpos += n;
        return n;
      }

      @Override
      public boolean isOpen() {
        return open;
      }

      @Override
      public void close() {
        open = false;
      }
    };
  }

  /**
   * Device bytes {@code [pos, pos + len)} into {@code buf[0, len)}: extents from the tar, zeros
   * around them.
   */
  void fill(long pos, byte[] buf, int len) throws IOException {
    Arrays.fill(buf, 0, len, (byte) 0);
    long end = pos + len;
    int i = map.extentAt(pos);
    // a run of extents whose tar bytes are close together is one tar read
    int runFirst = -1;
    long runTarStart = 0;
    long runTarEnd = 0;
    for (; i < map.extents() && map.deviceOffset(i) < end; i++) {
      long ds = Math.max(pos, map.deviceOffset(i));
      long de = Math.min(end, map.deviceOffset(i) + map.length(i));
      if (ds >= de) {
        continue; // pos is in the padding after extent i
      }
      long ts = map.tarOffset(i) + (ds - map.deviceOffset(i));
      long te = ts + (de - ds);
      if (runFirst >= 0 && (ts - runTarEnd > MAX_GAP || te - runTarStart > 4 * WINDOW)) {
        readRun(runFirst, i - 1, runTarStart, runTarEnd, pos, end, buf);
        runFirst = -1;
      }
      if (runFirst < 0) {
        runFirst = i;
        runTarStart = ts;
      }
      runTarEnd = te;
    }
    if (runFirst >= 0) {
      readRun(runFirst, i - 1, runTarStart, runTarEnd, pos, end, buf);
    }
  }

  private void readRun(
      int first, int last, long tarStart, long tarEnd, long pos, long end, byte[] buf)
      throws IOException {
    byte[] tmp = new byte[(int) (tarEnd - tarStart)];
    tar.read(tarStart, tmp, 0, tmp.length);
    for (int i = first; i <= last; i++) {
      long ds = Math.max(pos, map.deviceOffset(i));
      long de = Math.min(end, map.deviceOffset(i) + map.length(i));
      if (ds >= de) {
        continue;
      }
      long ts = map.tarOffset(i) + (ds - map.deviceOffset(i));
      System.arraycopy(tmp, (int) (ts - tarStart), buf, (int) (ds - pos), (int) (de - ds));
    }
  }
}

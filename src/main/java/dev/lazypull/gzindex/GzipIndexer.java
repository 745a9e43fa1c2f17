package dev.lazypull.gzindex;

import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.zip.CRC32;

/**
 * Builds a checkpoint index of a gzip stream while reading it once: an InputStream of the
 * uncompressed bytes (so a tar reader can list the layer in the same pass), recording a {@link
 * Checkpoint} at deflate block boundaries roughly every {@code span} uncompressed bytes and handing
 * each one's 32 KiB window to a {@link CheckpointSink} (which may write it straight to a zinfo
 * file). Memory is bounded whatever the stream's size: the decoder's buffers, one window, and per
 * checkpoint its 24 bytes of offsets and a 32-byte span digest.
 *
 * <p>Checkpoints follow zran.c and SOCI: the first at the start of the first deflate block (after
 * the gzip header), then at the first block boundary more than {@code span} bytes of output after
 * the previous one, never after the last block. Concatenated gzip members (as eStargz writes them)
 * are read through: a member's start is a boundary like the others, with a window of zeros (nothing
 * before it can be referenced); with {@link Options#checkpointEveryMember} every member start is a
 * checkpoint, which readers that cannot cross member ends (erofs-utils) need. Each member's CRC32
 * and ISIZE are checked; anything after the last member that is not another member is an error.
 *
 * <p>It also computes the whole stream's sha256 and, per span, the sha256 of the compressed bytes
 * {@code [firstByte(i), in(i+1))} (the last span runs to the end of the stream): see {@link
 * SpanTable}.
 *
 * <p>Use: read the uncompressed bytes (or not), then {@link #finish}, which reads whatever is left
 * and returns the {@link Result}.
 */
public final class GzipIndexer extends InputStream {
  public static final long DEFAULT_SPAN = 4L << 20;

  /** Receives each checkpoint with its window as it is made. */
  public interface CheckpointSink {
    /**
     * @param window the 32 KiB of output before the checkpoint (zero-filled before the member's
     *     start); valid only during the call
     */
    void accept(int index, Checkpoint checkpoint, byte[] window) throws IOException;
  }

  /**
   * @param span uncompressed bytes between checkpoints (at least; checkpoints wait for a block
   *     boundary)
   * @param checkpointEveryMember also put a checkpoint at the start of every gzip member
   * @param maxUncompressed fail once the stream expands beyond this many bytes (a zip bomb guard)
   */
  public record Options(long span, boolean checkpointEveryMember, long maxUncompressed) {
    public Options {
      if (span < 1 || maxUncompressed < 0) {
        throw new IllegalArgumentException("span " + span + ", maxUncompressed " + maxUncompressed);
      }
    }

    public static Options defaults() {
      return new Options(DEFAULT_SPAN, false, Long.MAX_VALUE);
    }

    public Options withSpan(long s) {
      return new Options(s, checkpointEveryMember, maxUncompressed);
    }
  }

  /**
   * What indexing found.
   *
   * @param spanDigests per checkpoint, the sha256 of its span's compressed bytes
   * @param sha256 of the whole compressed stream (the layer digest)
   */
  public record Result(
      Options options,
      List<Checkpoint> checkpoints,
      List<byte[]> spanDigests,
      byte[] sha256,
      long compressedSize,
      long uncompressedSize,
      int members) {}

  private final Options options;
  private final CheckpointSink sink;
  private final MessageDigest layerMd = sha256();
  private MessageDigest spanMd;
  private long hashedUpTo = -1; // span bytes hashed so far end here; -1 before the first checkpoint
  private long compressedSize;
  private final DeflateDecoder dec;
  private final CRC32 crc = new CRC32();
  private final byte[] window = new byte[DeflateDecoder.WINDOW];
  private final List<Checkpoint> checkpoints = new ArrayList<>();
  private final List<byte[]> spanDigests = new ArrayList<>();
  private long lastOut;
  private long memberStartOut;
  private boolean memberStart;
  private int members;
  private boolean inMember;
  private boolean done;
  private Result result;
  private byte[] data;
  private int dataPos;
  private int dataEnd;

  public GzipIndexer(InputStream gzip, Options options, CheckpointSink sink) {
    this.options = options;
    this.sink = sink;
    DeflateDecoder.Input input =
        (b, off, len) -> {
          int n = gzip.read(b, off, len);
          if (n > 0) {
            layerMd.update(b, off, n);
            compressedSize += n;
          }
          return n;
        };
    this.dec = new DeflateDecoder(input, 0, this::hashSpanBytes);
  }

  /** Indexes a whole stream, discarding the uncompressed bytes. */
  public static Result index(InputStream gzip, Options options, CheckpointSink sink)
      throws IOException {
    return new GzipIndexer(gzip, options, sink).finish();
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }

  private void hashSpanBytes(byte[] b, int off, int len, long offset) {
    if (hashedUpTo < 0) {
      return;
    }
    long end = offset + len;
    if (end <= hashedUpTo) {
      return;
    }
    long from = Math.max(hashedUpTo, offset);
    spanMd.update(b, off + (int) (from - offset), (int) (end - from));
    hashedUpTo = end;
  }

  @Override
  public int read() throws IOException {
    byte[] one = new byte[1];
    return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    Objects.checkFromIndexSize(off, len, b.length);
    if (len == 0) {
      return 0;
    }
    while (dataPos == dataEnd) {
      if (done) {
        return -1;
      }
      advance();
    }
    int n = Math.min(len, dataEnd - dataPos);
    System.arraycopy(data, dataPos, b, off, n);
    dataPos += n;
    return n;
  }

  /** Reads the rest of the stream and returns the index. */
  public Result finish() throws IOException {
    while (!done) {
      advance();
    }
    dataPos = dataEnd;
    return result;
  }

  private void advance() throws IOException {
    if (!inMember) {
      if (members > 0 && dec.atEnd()) {
        end();
        return;
      }
      readHeader();
      inMember = true;
      memberStart = true;
      memberStartOut = dec.outPosition() + 0;
      return;
    }
    int ev = dec.next();
    switch (ev) {
      case DeflateDecoder.BOUNDARY:
        boundary();
        return;
      case DeflateDecoder.DATA:
      case DeflateDecoder.END:
        int s = dec.dataStart();
        int e = dec.dataEnd();
        crc.update(dec.buffer(), s, e - s);
        data = dec.buffer();
        dataPos = s;
        dataEnd = e;
        if (dec.outPosition() > options.maxUncompressed()) {
          throw new GzipFormatException(
              "gzip stream expands beyond "
                  + options.maxUncompressed()
                  + " bytes (compressed offset "
                  + (dec.bitPosition() >>> 3)
                  + ")");
        }
        if (ev == DeflateDecoder.END) {
          trailer();
          inMember = false;
        }
        return;
      default:
        throw new AssertionError(ev);
    }
  }

  private void boundary() throws IOException {
    long out = dec.outPosition();
    boolean due =
        checkpoints.isEmpty()
            || out - lastOut > options.span()
            || (memberStart && options.checkpointEveryMember());
    memberStart = false;
    if (!due) {
      return;
    }
    Checkpoint cp = Checkpoint.atBit(dec.bitPosition(), out);
    if (!checkpoints.isEmpty()) {
      dec.peekInput(hashedUpTo, cp.in(), this::hashSpanBytes);
      spanDigests.add(spanMd.digest());
    }
    spanMd = sha256();
    hashedUpTo = cp.firstByte();
    dec.peekInput(cp.firstByte(), cp.in(), this::hashSpanBytes);
    dec.window(window, 0);
    sink.accept(checkpoints.size(), cp, window);
    checkpoints.add(cp);
    lastOut = out;
  }

  private void readHeader() throws IOException {
    GzipMember.readHeader(dec, members + 1);
    members++;
    crc.reset();
    dec.startStream(dec.outPosition());
  }

  private void trailer() throws IOException {
    long at = dec.bitPosition() >>> 3;
    long[] t = GzipMember.readTrailer(dec, members);
    if (t[0] != crc.getValue()) {
      throw new GzipFormatException(
          String.format(
              "gzip member %d: CRC32 mismatch (trailer at offset %d says " + "%08x, data has %08x)",
              members, at, t[0], crc.getValue()));
    }
    long size = dec.outPosition() - memberStartOut;
    if (t[1] != (size & 0xffffffffL)) {
      throw new GzipFormatException(
          "gzip member "
              + members
              + ": length mismatch (trailer at offset "
              + at
              + " says "
              + t[1]
              + " mod 2^32, data has "
              + size
              + ")");
    }
  }

  private void end() throws IOException {
    dec.releaseAll();
    spanDigests.add(spanMd.digest());
    done = true;
    result =
        new Result(
            options,
            List.copyOf(checkpoints),
            List.copyOf(spanDigests),
            layerMd.digest(),
            compressedSize,
            dec.outPosition(),
            members);
  }
}

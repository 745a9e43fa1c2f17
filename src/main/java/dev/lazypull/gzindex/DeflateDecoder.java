package dev.lazypull.gzindex;

import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.zip.Inflater;

/**
 * A pure-Java raw DEFLATE decoder (RFC 1951: stored, fixed and dynamic Huffman blocks) that knows
 * where it is: it stops at every block boundary and reports the exact bit position there, and it
 * can start at any bit position with a preset 32 KiB window — the two things {@link Inflater}
 * cannot do and a zran-style index needs. It also reads the bytes between deflate streams (gzip
 * headers and trailers) from the same buffer.
 *
 * <p>Pull-based: {@link #next} decodes until an event — {@link #BOUNDARY} (about to read a block
 * header), {@link #DATA} (the output buffer is due to be flushed), {@link #LIMIT} (the output limit
 * was reached), {@link #END} (the final block ended; the input is now byte-aligned just after it).
 * Each event comes with the output produced since the previous one in {@code buffer()[dataStart()
 * .. dataEnd())}, valid until the next call.
 *
 * <p>Bounded: a 64 KiB input buffer and a 32 KiB + 256 KiB output buffer, whatever the stream;
 * tables are preallocated. Every malformed construct (bad block type, stored length check,
 * over-subscribed or incomplete codes, invalid symbols, distances beyond the available history,
 * truncated input) throws {@link GzipFormatException} naming the compressed offset. Each event
 * consumes at least one bit or produces at least one byte, so a caller loop always makes progress.
 */
public final class DeflateDecoder {
  /** Source of compressed bytes: like InputStream.read, -1 at the end. */
  public interface Input {
    int read(byte[] b, int off, int len) throws IOException;
  }

  /** Told about input bytes before the decoder drops them from its buffer (for hashing spans). */
  public interface Release {
    void release(byte[] b, int off, int len, long offset) throws IOException;
  }

  public static final int BOUNDARY = 1;
  public static final int DATA = 2;
  public static final int LIMIT = 3;
  public static final int END = 4;

  public static final int WINDOW = 32 * 1024;
  private static final int CHUNK = 256 * 1024;
  private static final int IN_SIZE = 64 * 1024;
  private static final int PAD =
      32; // zero bytes appended at end of input so the fast path needs no checks

  private static final VarHandle LONG_LE =
      MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
  private static final int[] CODELEN_ORDER = {
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15
  };

  private static final int S_BOUNDARY = 0;
  private static final int S_HEADER = 1;
  private static final int S_STORED = 2;
  private static final int S_HUFFMAN = 3;
  private static final int S_DONE = 4;

  private final Input input;
  private final Release release;
  private final byte[] in = new byte[IN_SIZE + PAD];
  private int ip;
  private int inLimit;
  private long inBase; // compressed offset of in[0]
  private boolean eof;
  private long realEnd = Long.MAX_VALUE; // compressed offset where input ended
  private long bb;
  private int bc;

  private final byte[] out = new byte[WINDOW + CHUNK + 512];
  private int op;
  private int emitFrom;
  private long outBase; // uncompressed offset of out[0]
  private long limit = Long.MAX_VALUE;

  private int state = S_DONE;
  private boolean finalBlock;
  private int storedLeft;
  private final int[] litTable = new int[Huffman.LIT_TABLE_SIZE];
  private final int[] distTable = new int[Huffman.DIST_TABLE_SIZE];
  private final int[] clTable = new int[Huffman.CODELEN_TABLE_SIZE];
  private final int[] lens = new int[320];
  private int[] lit;
  private int[] dist;

  /**
   * @param startOffset the compressed offset of the first byte {@code input} yields (for positions
   *     and errors)
   * @param release told about bytes before they leave the buffer, or null
   */
  public DeflateDecoder(Input input, long startOffset, Release release) {
    this.input = input;
    this.release = release;
    this.inBase = startOffset;
  }

  // ----------------------------------------------------------------------------------------------
  // positions

  /** The compressed bit position of the next unread bit (8 × byte offset + bit within the byte). */
  public long bitPosition() {
    return (inBase + ip) * 8 - bc;
  }

  /** The uncompressed offset of the next byte to be produced. */
  public long outPosition() {
    return outBase + op;
  }

  public byte[] buffer() {
    return out;
  }

  public int dataStart() {
    return emitFrom;
  }

  public int dataEnd() {
    return op;
  }

  /**
   * Stop producing output at this uncompressed offset (the last event may overshoot it by < 258
   * bytes).
   */
  public void limit(long uncompressedOffset) {
    this.limit = uncompressedOffset;
  }

  /**
   * Copies the last 32 KiB of output (right-aligned; zeros before the start of the current deflate
   * stream) into {@code dst[off .. off + 32768)}.
   */
  public void window(byte[] dst, int off) {
    int have = Math.min(op, WINDOW);
    Arrays.fill(dst, off, off + WINDOW - have, (byte) 0);
    System.arraycopy(out, op - have, dst, off + WINDOW - have, have);
  }

  // ------------------------------------------------------------------------------------------------- setup

  /**
   * Starts a new deflate stream at the current (byte-aligned or not) input position, with no
   * history, producing output from uncompressed offset {@code outOffset}.
   */
  public void startStream(long outOffset) {
    outBase = outOffset;
    op = 0;
    emitFrom = 0;
    state = S_BOUNDARY;
    finalBlock = false;
  }

  /**
   * Starts mid-stream at a checkpoint: skips {@code skipBits} (0–7) bits of the first byte and
   * primes the history with a 32 KiB window. The next event is the {@link #BOUNDARY} at the
   * checkpoint.
   */
  public void startAt(int skipBits, byte[] window, long outOffset) throws IOException {
    if (skipBits < 0 || skipBits > 7) {
      throw new IllegalArgumentException("skipBits " + skipBits);
    }
    if (skipBits > 0) {
      need(skipBits);
      drop(skipBits);
    }
    outBase = outOffset - WINDOW;
    System.arraycopy(window, 0, out, 0, WINDOW);
    op = WINDOW;
    emitFrom = WINDOW;
    state = S_BOUNDARY;
    finalBlock = false;
  }

  // -------------------------------------------------------------------------------------------
  // byte access

  /** Discards bits up to the next byte boundary and returns whole buffered bytes to the input. */
  public void alignToByte() {
    drop(bc & 7);
    ip -= bc >>> 3;
    bb = 0;
    bc = 0;
  }

  /** The next input byte, or -1 at the end of the input; the position must be byte-aligned. */
  public int readByte() throws IOException {
    alignToByte();
    if (ip >= inLimit && !fill()) {
      return -1;
    }
    if (inBase + ip >= realEnd) {
      return -1;
    }
    return in[ip++] & 0xff;
  }

  /** Whether the input has no more bytes (byte-aligned position). */
  public boolean atEnd() throws IOException {
    alignToByte();
    if (ip >= inLimit) {
      fill();
    }
    return inBase + ip >= Math.min(realEnd, inBase + inLimit);
  }

  /** At the end of the input ({@link #atEnd}): releases the bytes still buffered. */
  public void releaseAll() throws IOException {
    if (!atEnd()) {
      throw new IllegalStateException("input not at its end");
    }
    int end = (int) (realEnd - inBase);
    if (release != null && end > 0) {
      release.release(in, 0, end, inBase);
    }
    inBase = realEnd;
    ip = 0;
    inLimit = 0;
  }

  /** Passes buffered input bytes {@code [from, to)} (compressed offsets) to {@code sink}. */
  public void peekInput(long from, long to, Release sink) throws IOException {
    if (from < inBase || to > inBase + inLimit || from > to) {
      throw new IllegalStateException(
          "bytes "
              + from
              + ".."
              + to
              + " not buffered ("
              + inBase
              + ".."
              + (inBase + inLimit)
              + ")");
    }
    sink.release(in, (int) (from - inBase), (int) (to - from), from);
  }

  /** Refills the input buffer; false if no byte could be added (end of input). */
  private boolean fill() throws IOException {
    if (eof) {
      return false;
    }
    int keep = Math.max(0, ip - 8); // the bit buffer may give back up to 8 bytes
    if (keep > 0) {
      if (release != null) {
        release.release(in, 0, keep, inBase);
      }
      System.arraycopy(in, keep, in, 0, inLimit - keep);
      inLimit -= keep;
      ip -= keep;
      inBase += keep;
    }
    int added = 0;
    while (inLimit < IN_SIZE) {
      int n = input.read(in, inLimit, IN_SIZE - inLimit);
      if (n < 0) {
        eof = true;
        realEnd = inBase + inLimit;
        Arrays.fill(in, inLimit, inLimit + PAD, (byte) 0);
        inLimit += PAD;
        break;
      }
      inLimit += n;
      added += n;
      if (n > 0 && inLimit - ip >= 4096) {
        break;
      }
    }
    return added > 0;
  }

  // ------------------------------------------------------------------------------------------------ bits

  private void need(int n) throws IOException {
    while (bc < n) {
      if (ip >= inLimit) {
        if (!fill() && ip >= inLimit) {
          throw truncated();
        }
      }
      bb |= (long) (in[ip++] & 0xff) << bc;
      bc += 8;
    }
    if (eof && bitPosition() + n > realEnd * 8) {
      throw truncated();
    }
  }

  /**
   * Loads at least {@code n} bits, zero bits past the end of the input allowed: check with
   * checkConsumed.
   */
  private void peek(int n) throws IOException {
    while (bc < n) {
      if (ip >= inLimit && !fill() && ip >= inLimit) {
        throw truncated();
      }
      bb |= (long) (in[ip++] & 0xff) << bc;
      bc += 8;
    }
  }

  private void checkConsumed() throws GzipFormatException {
    if (eof && bitPosition() > realEnd * 8) {
      throw truncated();
    }
  }

  private int bits(int n) throws IOException {
    need(n);
    int v = (int) (bb & ((1L << n) - 1));
    drop(n);
    return v;
  }

  private void drop(int n) {
    bb >>>= n;
    bc -= n;
  }

  private GzipFormatException truncated() {
    return new GzipFormatException(
        "deflate stream truncated at compressed offset " + Math.min(realEnd, inBase + ip));
  }

  private GzipFormatException corrupt(String what) {
    return new GzipFormatException(
        what
            + " at compressed offset "
            + (bitPosition() >>> 3)
            + " (bit "
            + (bitPosition() & 7)
            + ")");
  }

  // ----------------------------------------------------------------------------------------------
  // decoding

  /** Decodes until the next event; see the class comment. */
  public int next() throws IOException {
    // Consume the data of the previous event; slide the window if the buffer is full.
    emitFrom = op;
    if (op >= WINDOW + CHUNK) {
      int keep = WINDOW;
      System.arraycopy(out, op - keep, out, 0, keep);
      outBase += op - keep;
      op = keep;
      emitFrom = keep;
    }
    while (true) {
      if (outBase + op >= limit && state != S_DONE) {
        return LIMIT;
      }
      switch (state) {
        case S_BOUNDARY:
          state = S_HEADER;
          return BOUNDARY;
        case S_HEADER:
          readBlockHeader();
          break;
        case S_STORED:
          if (copyStored()) {
            return DATA;
          }
          break;
        case S_HUFFMAN:
          if (decodeHuffman()) {
            return DATA;
          }
          break;
        case S_DONE:
          throw new IllegalStateException("deflate stream already ended");
        default:
          throw new AssertionError(state);
      }
      if (state == S_BOUNDARY && finalBlock) {
        state = S_DONE;
        alignToByte();
        if (inBase + ip > realEnd) {
          throw truncated();
        }
        return END;
      }
      if (state == S_BOUNDARY && op > emitFrom) {
        return DATA; // report the block's output first, then the boundary
      }
    }
  }

  private void readBlockHeader() throws IOException {
    int h = bits(3);
    finalBlock = (h & 1) != 0;
    switch (h >>> 1) {
      case 0:
        {
          drop(bc & 7);
          need(32);
          int len = (int) (bb & 0xffff);
          int nlen = (int) ((bb >>> 16) & 0xffff);
          if (len != (~nlen & 0xffff)) {
            throw corrupt("stored block length check failed");
          }
          drop(32);
          alignToByte(); // hand the buffered bytes back: stored data is copied straight from the
          // input buffer
          storedLeft = len;
          state = S_STORED;
          break;
        }
      case 1:
        lit = Huffman.FIXED_LIT;
        dist = Huffman.FIXED_DIST;
        state = S_HUFFMAN;
        break;
      case 2:
        readDynamicTables();
        lit = litTable;
        dist = distTable;
        state = S_HUFFMAN;
        break;
      default:
        throw corrupt("invalid block type 3");
    }
  }

  private void readDynamicTables() throws IOException {
    int nlen = bits(5) + 257;
    int ndist = bits(5) + 1;
    int ncode = bits(4) + 4;
    if (nlen > 286 || ndist > 30) {
      throw corrupt("too many length or distance symbols (" + nlen + ", " + ndist + ")");
    }
    Arrays.fill(lens, 0, 19, 0);
    for (int i = 0; i < ncode; i++) {
      lens[CODELEN_ORDER[i]] = bits(3);
    }
    int[] cl = clTable;
    boolean any = false;
    for (int i = 0; i < 19; i++) {
      any |= lens[i] != 0;
    }
    if (!any) {
      throw corrupt("empty code length code");
    }
    Huffman.build(lens, 0, 19, Huffman.Alphabet.CODELEN, cl, Huffman.CODELEN_ROOT);
    int total = nlen + ndist;
    int i = 0;
    while (i < total) {
      peek(7);
      int e = cl[(int) (bb & 0x7f)];
      if ((e & Huffman.KIND) == Huffman.INVALID) {
        throw corrupt("invalid code length code");
      }
      drop(e & 15);
      checkConsumed();
      int sym = e >>> 16;
      if (sym < 16) {
        lens[i++] = sym;
        continue;
      }
      int rep;
      int val = 0;
      if (sym == 16) {
        if (i == 0) {
          throw corrupt("repeat of a code length with no previous length");
        }
        val = lens[i - 1];
        rep = 3 + bits(2);
      } else if (sym == 17) {
        rep = 3 + bits(3);
      } else {
        rep = 11 + bits(7);
      }
      if (i + rep > total) {
        throw corrupt("code lengths repeat past the end");
      }
      Arrays.fill(lens, i, i + rep, val);
      i += rep;
    }
    if (lens[256] == 0) {
      throw corrupt("no end-of-block code");
    }
    Huffman.build(lens, 0, nlen, Huffman.Alphabet.LITLEN, litTable, Huffman.LIT_ROOT);
    Huffman.build(lens, nlen, ndist, Huffman.Alphabet.DIST, distTable, Huffman.DIST_ROOT);
  }

  /** Copies stored bytes; true when the output buffer is due to be flushed. */
  private boolean copyStored() throws IOException {
    int stop = outStop();
    while (storedLeft > 0) {
      if (op >= stop) {
        return true;
      }
      int avail = realLimit() - ip;
      if (avail <= 0) {
        fill();
        avail = realLimit() - ip;
        if (avail <= 0) {
          throw truncated();
        }
      }
      int n = Math.min(storedLeft, Math.min(avail, stop - op));
      System.arraycopy(in, ip, out, op, n);
      ip += n;
      op += n;
      storedLeft -= n;
    }
    state = S_BOUNDARY;
    return false;
  }

  private int realLimit() {
    return eof ? (int) (realEnd - inBase) : inLimit;
  }

  /** Where in the output buffer to stop: when it is full, or at the limit. */
  private int outStop() {
    long room = Math.max(0, limit - (outBase + op)); // both non-negative: no overflow
    return (int) Math.min(WINDOW + CHUNK, op + Math.min(room, WINDOW + CHUNK));
  }

  /**
   * Decodes symbols; true when the output buffer is due to be flushed, false at the end of the
   * block.
   */
  private boolean decodeHuffman() throws IOException {
    final byte[] in = this.in;
    final byte[] out = this.out;
    final int[] lt = this.lit;
    final int[] dt = this.dist;
    final int stop = outStop();
    long b = bb;
    int c = bc;
    int i = ip;
    int o = op;
    try {
      while (o < stop) {
        if (c < 48) {
          if (i > inLimit - 8) {
            // Near the end of the buffer: refill it (the fast path reads 8 bytes at a time).
            bb = b;
            bc = c;
            ip = i;
            op = o;
            if (!eof) {
              fill();
            }
            if (ip > inLimit - 8) {
              throw truncated(); // at the end of the input, past the zero padding
            }
            b = bb;
            c = bc;
            i = ip;
          }
          b |= (long) LONG_LE.get(in, i) << c;
          i += (63 - c) >>> 3;
          c |= 56;
        }
        int e = lt[(int) b & ((1 << Huffman.LIT_ROOT) - 1)];
        if ((e & Huffman.KIND) == Huffman.SUBTABLE) {
          e = lt[(e >>> 16) + ((int) (b >>> Huffman.LIT_ROOT) & ((1 << ((e >>> 8) & 15)) - 1))];
        }
        int kind = e & Huffman.KIND;
        int n = e & 15;
        b >>>= n;
        c -= n;
        if (kind == Huffman.LITERAL) {
          out[o++] = (byte) (e >>> 16);
          continue;
        }
        if (kind != Huffman.LENGTH) {
          if (kind == Huffman.END_OF_BLOCK) {
            state = S_BOUNDARY;
            return false;
          }
          bb = b;
          bc = c;
          ip = i;
          op = o;
          throw corrupt("invalid literal/length code");
        }
        int x = (e >>> 8) & 15;
        int len = (e >>> 16) + (int) (b & ((1 << x) - 1));
        b >>>= x;
        c -= x;
        int d = dt[(int) b & ((1 << Huffman.DIST_ROOT) - 1)];
        if ((d & Huffman.KIND) == Huffman.SUBTABLE) {
          d = dt[(d >>> 16) + ((int) (b >>> Huffman.DIST_ROOT) & ((1 << ((d >>> 8) & 15)) - 1))];
        }
        if ((d & Huffman.KIND) != Huffman.DISTANCE) {
          bb = b;
          bc = c;
          ip = i;
          op = o;
          throw corrupt("invalid distance code");
        }
        n = d & 15;
        b >>>= n;
        c -= n;
        x = (d >>> 8) & 15;
        int dist = (d >>> 16) + (int) (b & ((1 << x) - 1));
        b >>>= x;
        c -= x;
        if (dist > o) {
          bb = b;
          bc = c;
          ip = i;
          op = o;
          throw corrupt("distance " + dist + " too far back");
        }
        int from = o - dist;
        if (dist >= len && len > 16) {
          System.arraycopy(out, from, out, o, len);
          o += len;
        } else {
          int end = o + len;
          while (o < end) {
            out[o++] = out[from++];
          }
        }
      }
      return true;
    } finally {
      bb = b;
      bc = c;
      ip = i;
      op = o;
      if (eof && bitPosition() > realEnd * 8) {
        state = S_DONE;
        throw truncated();
      }
    }
  }
}

package dev.lazypull.gzindex;

import java.util.Arrays;

/**
 * Canonical Huffman decoding tables for deflate (RFC 1951 §3.2.2), two-level like zlib's: a primary
 * table indexed by the next {@code rootBits} input bits (LSB-first, so codes are stored
 * bit-reversed), and subtables for longer codes. Every table entry is one int:
 *
 * <pre>
 *   bits  0..3   code length to consume (the full length, also in subtable entries)
 *   bits  4..7   kind: INVALID, LITERAL, LENGTH, END_OF_BLOCK, SUBTABLE, DISTANCE
 *   bits  8..11  extra bits to read after the code (LENGTH, DISTANCE) or the subtable's index bits (SUBTABLE)
 *   bits 16..31  value: the literal byte, the base length or distance, or the subtable's offset
 * </pre>
 *
 * Building validates the code: over-subscribed sets are rejected; incomplete sets only in the one
 * case zlib accepts (a single code of length 1, for literal/length and distance codes).
 */
final class Huffman {
  static final int INVALID = 0;
  static final int LITERAL = 1 << 4;
  static final int LENGTH = 2 << 4;
  static final int END_OF_BLOCK = 3 << 4;
  static final int SUBTABLE = 4 << 4;
  static final int DISTANCE = 5 << 4;
  static final int KIND = 0xF0;

  static final int LIT_ROOT = 11;
  static final int DIST_ROOT = 8;
  static final int CODELEN_ROOT = 7;

  /**
   * Upper bounds on table sizes: the primary table plus one subtable of 2^(15-root) per long code
   * at most.
   */
  static final int LIT_TABLE_SIZE = (1 << LIT_ROOT) + 288 * (1 << (15 - LIT_ROOT));

  static final int DIST_TABLE_SIZE = (1 << DIST_ROOT) + 32 * (1 << (15 - DIST_ROOT));
  static final int CODELEN_TABLE_SIZE = 1 << CODELEN_ROOT;

  private static final int[] LENGTH_BASE = {
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258
  };
  private static final int[] LENGTH_EXTRA = {
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0
  };
  private static final int[] DIST_BASE = {
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049,
    3073, 4097, 6145, 8193, 12289, 16385, 24577
  };
  private static final int[] DIST_EXTRA = {
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13
  };

  /** What a table's symbols mean. */
  enum Alphabet {
    LITLEN,
    DIST,
    CODELEN
  }

  /** Per alphabet, each symbol's table entry without its code length. */
  private static final int[][] SYMBOLS = new int[3][];

  static final int[] FIXED_LIT = new int[LIT_TABLE_SIZE];
  static final int[] FIXED_DIST = new int[DIST_TABLE_SIZE];

  static {
    for (Alphabet a : Alphabet.values()) {
      int n = a == Alphabet.LITLEN ? 288 : a == Alphabet.DIST ? 32 : 19;
      SYMBOLS[a.ordinal()] = new int[n];
      for (int s = 0; s < n; s++) {
        SYMBOLS[a.ordinal()][s] = entry(a, s, 0);
      }
    }
    int[] lens = new int[288];
    for (int i = 0; i < 288; i++) {
      lens[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
    }
    int[] d = new int[32];
    Arrays.fill(d, 5);
    try {
      build(lens, 0, 288, Alphabet.LITLEN, FIXED_LIT, LIT_ROOT);
      build(d, 0, 32, Alphabet.DIST, FIXED_DIST, DIST_ROOT);
    } catch (GzipFormatException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  private Huffman() {}

  private static int entry(Alphabet a, int sym, int len) {
    switch (a) {
      case LITLEN:
        if (sym < 256) {
          return sym << 16 | LITERAL | len;
        }
        if (sym == 256) {
          return END_OF_BLOCK | len;
        }
        if (sym <= 285) {
          return LENGTH_BASE[sym - 257] << 16 | LENGTH_EXTRA[sym - 257] << 8 | LENGTH | len;
        }
        return INVALID | len; // 286, 287: part of the fixed code, never valid in a stream
      case DIST:
        if (sym < 30) {
          return DIST_BASE[sym] << 16 | DIST_EXTRA[sym] << 8 | DISTANCE | len;
        }
        return INVALID | len; // 30, 31
      default:
        return sym << 16 | LITERAL | len;
    }
  }

  /**
   * Builds the table for code lengths {@code lens[from..from+n)} into {@code table}; returns the
   * number of entries used.
   *
   * @throws GzipFormatException for an over-subscribed or (outside the single-code case) incomplete
   *     code
   */
  static int build(int[] lens, int from, int n, Alphabet alphabet, int[] table, int root)
      throws GzipFormatException {
    final int[] symbols = SYMBOLS[alphabet.ordinal()];
    int[] count = new int[16];
    for (int i = 0; i < n; i++) {
      count[lens[from + i]]++;
    }
    count[0] = 0;
    int max = 0;
    for (int l = 1; l <= 15; l++) {
      if (count[l] != 0) {
        max = l;
      }
    }
    int left = 1;
    for (int l = 1; l <= 15; l++) {
      left <<= 1;
      left -= count[l];
      if (left < 0) {
        throw new GzipFormatException("over-subscribed " + name(alphabet) + " code");
      }
    }
    if (left > 0 && max != 0 && (alphabet == Alphabet.CODELEN || max != 1)) {
      throw new GzipFormatException("incomplete " + name(alphabet) + " code");
    }
    int rootSize = 1 << root;
    Arrays.fill(table, 0, rootSize, INVALID);
    int[] next = new int[16];
    int code = 0;
    for (int l = 1; l <= 15; l++) {
      code = (code + count[l - 1]) << 1;
      next[l] = code;
    }
    int rootMask = rootSize - 1;
    // Pass 1: short codes go straight into the primary table; for long codes note each prefix's
    // longest code.
    int[] longest = null;
    int[] codes = new int[n];
    for (int s = 0; s < n; s++) {
      int l = lens[from + s];
      if (l == 0) {
        continue;
      }
      int rev = Integer.reverse(next[l]++) >>> (32 - l);
      codes[s] = rev;
      if (l <= root) {
        int e = symbols[s] | l;
        for (int i = rev; i < rootSize; i += 1 << l) {
          table[i] = e;
        }
      } else {
        if (longest == null) {
          longest = new int[rootSize];
        }
        int p = rev & rootMask;
        longest[p] = Math.max(longest[p], l);
      }
    }
    int size = rootSize;
    if (longest == null) {
      return size;
    }
    for (int p = 0; p < rootSize; p++) {
      if (longest[p] != 0) {
        int subBits = longest[p] - root;
        table[p] = size << 16 | subBits << 8 | SUBTABLE | root;
        Arrays.fill(table, size, size + (1 << subBits), INVALID);
        size += 1 << subBits;
      }
    }
    for (int s = 0; s < n; s++) {
      int l = lens[from + s];
      if (l <= root) {
        continue;
      }
      int rev = codes[s];
      int link = table[rev & rootMask];
      int off = link >>> 16;
      int subBits = (link >>> 8) & 15;
      int e = symbols[s] | l;
      for (int i = rev >>> root; i < 1 << subBits; i += 1 << (l - root)) {
        table[off + i] = e;
      }
    }
    return size;
  }

  private static String name(Alphabet a) {
    switch (a) {
      case LITLEN:
        return "literal/length";
      case DIST:
        return "distance";
      default:
        return "code length";
    }
  }
}

package dev.lazypull.erofs;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Where the data of an EROFS compressed inode (layouts COMPRESSED_FULL and COMPRESSED_COMPACT, as
 * mkfs.erofs {@code -z} writes them) lies: the physical clusters (pclusters) its logical-cluster
 * indexes point at, an inline tail pcluster (ztailpacking) and fragments in the packed inode. The
 * kernel decompresses; lazypull only needs the stored byte ranges, to prefetch and summarize them.
 * Follows the kernel's fs/erofs/zmap.c: the z_erofs_map_header at the 8-aligned end of the inode
 * and its xattrs, then either 8-byte full lcluster indexes (after 8 more reserved bytes) or
 * compacted 4-byte/2-byte packs whose last 4 bytes hold a base block address.
 *
 * <p>Untrusted input: every read is bounded by the image, the index count by the file size, and
 * anything the kernel would refuse (unknown lcluster types, a big-pcluster count where none may be,
 * lcluster sizes it does not support) is an {@link ErofsFormatException}.
 */
final class CompressedExtents {
  static final int ADVISE_COMPACTED_2B = 0x1;
  static final int ADVISE_BIG_PCLUSTER_1 = 0x2;
  static final int ADVISE_BIG_PCLUSTER_2 = 0x4;
  static final int ADVISE_INLINE_PCLUSTER = 0x8;
  static final int ADVISE_FRAGMENT_PCLUSTER = 0x20;
  static final int TYPE_PLAIN = 0;
  static final int TYPE_HEAD1 = 1;
  static final int TYPE_NONHEAD = 2;
  static final int TYPE_HEAD2 = 3;

  /**
   * On the first NONHEAD lcluster of a big pcluster: the low bits are its compressed block count.
   */
  static final int D0_CBLKCNT = 1 << 11;

  static final int INCOMPAT_BIG_PCLUSTER = 0x2;
  static final int INCOMPAT_ZTAILPACKING = 0x10;
  static final int INCOMPAT_FRAGMENTS = 0x20;

  /** Bit 7 of h_clusterbits: the whole file lives in the packed inode. */
  static final int FRAGMENT_INODE_BIT = 0x80;

  /**
   * Receives each stored range: a pcluster in the image's address space, or the inline tail in the
   * metadata.
   */
  interface RangeVisitor {
    void range(long offset, long length) throws IOException;
  }

  private record Lcluster(int type, int lo, long blkaddr) {}

  private CompressedExtents() {}

  /**
   * Visits the stored ranges of a compressed inode in logical order, one per physical cluster;
   * returns true when the inode also keeps data in the packed inode (fragments), which the caller
   * resolves. Streams the indexes: memory does not grow with the file.
   *
   * @param indexStart byte offset of the end of the inode and its inline xattrs
   */
  static boolean visit(
      ByteSource src, Superblock sb, long nid, InodeRecord r, long indexStart, RangeVisitor out)
      throws IOException {
    int blkbits = sb.blkszbits();
    long size = r.size();
    boolean full = r.layout() == InodeRecord.COMPRESSED_FULL;
    int incompat = sb.featureIncompat();
    long headerPos = align(indexStart, 8);
    int advise;
    int lclusterbits;
    int idataSize = 0;
    if (full
        && (incompat & (INCOMPAT_BIG_PCLUSTER | INCOMPAT_ZTAILPACKING | INCOMPAT_FRAGMENTS)) == 0) {
      advise = 0; // the oldest images: no map header to trust, block-sized lclusters, one block per
      // pcluster
      lclusterbits = blkbits;
    } else {
      ByteBuffer h = read(src, headerPos, 8);
      advise = h.getShort(4) & 0xffff;
      int clusterbits = h.get(7) & 0xff;
      if ((clusterbits & FRAGMENT_INODE_BIT) != 0) {
        return true; // the whole file lives in the packed inode
      }
      lclusterbits = blkbits + (clusterbits & 7);
      idataSize = h.getShort(2) & 0xffff;
    }
    boolean fragment = (advise & ADVISE_FRAGMENT_PCLUSTER) != 0;
    boolean inline = (advise & ADVISE_INLINE_PCLUSTER) != 0;
    if (size == 0) {
      return false;
    }
    long total = (size + (1L << lclusterbits) - 1) >>> lclusterbits;
    Indexes idx;
    if (full) {
      long base = headerPos + 16;
      if (total > (src.size() - base) / 8) {
        throw new ErofsFormatException(
            "nid " + nid + ": " + total + " full lcluster indexes run past the image");
      }
      idx = new FullIndexes(src, base, (int) total);
    } else {
      if (lclusterbits != blkbits || lclusterbits > 14) {
        throw new ErofsFormatException(
            "nid " + nid + ": compacted indexes with 2^" + lclusterbits + "-byte logical clusters");
      }
      if (((advise & ADVISE_BIG_PCLUSTER_1) == 0) != ((advise & ADVISE_BIG_PCLUSTER_2) == 0)) {
        throw new ErofsFormatException(
            "nid " + nid + ": compacted indexes with one big-pcluster head type only");
      }
      if (total > (src.size() - headerPos) / 2) {
        throw new ErofsFormatException(
            "nid " + nid + ": " + total + " compacted indexes run past the image");
      }
      idx = new CompactIndexes(src, nid, headerPos + 8, (int) total, lclusterbits, advise);
    }
    // the tail extent's head: the last HEAD/PLAIN lcluster whose extent starts inside the file
    int tailHead = -1;
    for (int i = (int) total - 1; i >= 0 && tailHead < 0; i--) {
      Lcluster l = idx.get(i);
      if (l.type != TYPE_NONHEAD && ((long) i << lclusterbits) + l.lo < size) {
        tailHead = i;
      }
    }
    if (tailHead < 0 && !fragment) {
      throw new ErofsFormatException("nid " + nid + ": no head logical cluster");
    }
    for (int i = 0; i < total; i++) {
      Lcluster l = idx.get(i);
      if (l.type == TYPE_NONHEAD || ((long) i << lclusterbits) + l.lo >= size) {
        continue; // not a head, or an extent that would start at or past the end: no read ever maps
        // it
      }
      if (inline && i == tailHead) {
        long at = idx.end();
        if (idataSize == 0
            || at % sb.blockSize() + idataSize > sb.blockSize()
            || at + idataSize > src.size()) {
          throw new ErofsFormatException(
              "nid " + nid + ": inline pcluster of " + idataSize + " bytes at " + at);
        }
        out.range(at, idataSize); // in the metadata, right after the indexes
        continue;
      }
      boolean big =
          (l.type == TYPE_HEAD1 && (advise & ADVISE_BIG_PCLUSTER_1) != 0)
              || ((l.type == TYPE_PLAIN || l.type == TYPE_HEAD2)
                  && (advise & ADVISE_BIG_PCLUSTER_2) != 0);
      long length = 1L << lclusterbits;
      if (big && i + 1 < total) {
        Lcluster next = idx.get(i + 1);
        if (next.type == TYPE_NONHEAD) {
          if ((next.lo & D0_CBLKCNT) == 0 || (next.lo & ~D0_CBLKCNT) == 0) {
            throw new ErofsFormatException(
                "nid "
                    + nid
                    + ": big pcluster at lcluster "
                    + i
                    + " without its compressed block count");
          }
          length = (long) (next.lo & ~D0_CBLKCNT) << blkbits;
        } else {
          length = 1L << blkbits;
        }
      }
      if (l.blkaddr < 0 || (l.blkaddr << blkbits) + length > (1L << 32 << blkbits)) {
        throw new ErofsFormatException("nid " + nid + ": pcluster at block " + l.blkaddr);
      }
      out.range(l.blkaddr << blkbits, length);
    }
    return fragment;
  }

  /** Random access to decoded lclusters, reading the indexes a window at a time. */
  private interface Indexes {
    Lcluster get(int lcn) throws IOException;

    /** Where the index area ends (an inline tail pcluster starts there). */
    long end();
  }

  /** 8-byte z_erofs_lcluster_index entries. */
  private static final class FullIndexes implements Indexes {
    private static final int WINDOW = 4096;
    private final ByteSource src;
    private final long base;
    private final int total;
    private int windowStart = -1;
    private ByteBuffer window;

    FullIndexes(ByteSource src, long base, int total) {
      this.src = src;
      this.base = base;
      this.total = total;
    }

    @Override
    public Lcluster get(int lcn) throws IOException {
      if (windowStart < 0 || lcn < windowStart || lcn >= windowStart + WINDOW) {
        windowStart = lcn / WINDOW * WINDOW;
        window =
            read(src, base + (long) windowStart * 8, Math.min(WINDOW, total - windowStart) * 8);
      }
      int at = (lcn - windowStart) * 8;
      int type = window.getShort(at) & 3;
      return type == TYPE_NONHEAD
          ? new Lcluster(type, window.getShort(at + 4) & 0xffff, -1)
          : new Lcluster(
              type,
              window.getShort(at + 2) & 0xffff,
              Integer.toUnsignedLong(window.getInt(at + 4)));
    }

    @Override
    public long end() {
      return base + (long) total * 8;
    }
  }

  /**
   * Compacted indexes: an initial run of 4-byte packs (2 lclusters in 8 bytes) up to a 32-byte
   * boundary, then (with COMPACTED_2B) 2-byte packs (16 lclusters in 32 bytes), then 4-byte packs;
   * each pack ends with the base block address its HEADs count from. Decoded one pack at a time, as
   * the kernel does.
   */
  private static final class CompactIndexes implements Indexes {
    private final ByteSource src;
    private final long nid;
    private final long ebase;
    private final int total;
    private final int c4initial;
    private final int c2b;
    private final int lobits;
    private final boolean big;
    private long packPos = -1;
    private Lcluster[] pack;

    CompactIndexes(ByteSource src, long nid, long ebase, int total, int lclusterbits, int advise) {
      this.src = src;
      this.nid = nid;
      this.ebase = ebase;
      this.total = total;
      this.c4initial = (int) (((32 - ebase % 32) / 4) & 7);
      this.c2b =
          (advise & ADVISE_COMPACTED_2B) != 0 && c4initial < total
              ? (total - c4initial) / 16 * 16
              : 0;
      this.lobits = Math.max(lclusterbits, 12);
      this.big = (advise & ADVISE_BIG_PCLUSTER_1) != 0;
    }

    @Override
    public Lcluster get(int lcn) throws IOException {
      // the kernel's z_erofs_load_compact_lcluster: which region, then the pack holding lcn
      long regionStart = ebase;
      int unit = 4;
      int rel = lcn;
      if (rel >= c4initial) {
        regionStart += c4initial * 4L;
        rel -= c4initial;
        if (rel < c2b) {
          unit = 2;
        } else {
          regionStart += c2b * 2L;
          rel -= c2b;
        }
      }
      int vcnt = unit == 4 ? 2 : 16;
      int packBytes = vcnt * unit;
      long start = regionStart + (long) (rel / vcnt) * packBytes;
      if (start != packPos) {
        pack = decodePack(start, vcnt, packBytes);
        packPos = start;
      }
      return pack[rel % vcnt];
    }

    private Lcluster[] decodePack(long start, int vcnt, int packBytes) throws IOException {
      if (start < 0 || start + packBytes > src.size()) {
        throw new ErofsFormatException("nid " + nid + ": compacted indexes run past the image");
      }
      ByteBuffer b = read(src, start, packBytes);
      byte[] in = new byte[packBytes + 4];
      b.get(0, in, 0, packBytes);
      long base = Integer.toUnsignedLong(b.getInt(packBytes - 4));
      int encodebits = (packBytes - 4) * 8 / vcnt;
      int[] types = new int[vcnt];
      int[] los = new int[vcnt];
      for (int i = 0; i < vcnt; i++) {
        int bit = encodebits * i;
        int v = (int) (le32(in, bit / 8) >>> (bit & 7));
        los[i] = v & ((1 << lobits) - 1);
        types[i] = (v >>> lobits) & 3;
      }
      Lcluster[] out = new Lcluster[vcnt];
      for (int i = 0; i < vcnt; i++) {
        out[i] =
            types[i] == TYPE_NONHEAD
                ? new Lcluster(TYPE_NONHEAD, los[i], -1)
                : new Lcluster(types[i], los[i], base + blocksBefore(nid, types, los, i, big));
      }
      return out;
    }

    @Override
    public long end() {
      int c4 = Math.min(c4initial, total);
      int rest = total - c4 - c2b;
      return ebase + (c4 + 1) / 2 * 8L + c2b * 2L + (rest + 1) / 2 * 8L;
    }
  }

  /**
   * The kernel's count of blocks taken by the pclusters before HEAD lcluster {@code i} of its pack.
   */
  private static long blocksBefore(long nid, int[] types, int[] los, int i, boolean big)
      throws ErofsFormatException {
    long nblk = 0;
    if (!big) {
      nblk = 1;
      while (i > 0) {
        --i;
        if (types[i] == TYPE_NONHEAD) {
          i -= los[i];
        }
        if (i >= 0) {
          ++nblk;
        }
      }
      return nblk;
    }
    while (i > 0) {
      --i;
      if (types[i] == TYPE_NONHEAD) {
        int lo = los[i];
        if ((lo & D0_CBLKCNT) != 0) {
          --i;
          nblk += lo & ~D0_CBLKCNT;
          continue;
        }
        if (lo <= 1) {
          throw new ErofsFormatException("nid " + nid + ": big pcluster lookback distance " + lo);
        }
        i -= lo - 2;
        continue;
      }
      ++nblk;
    }
    return nblk;
  }

  private static long le32(byte[] b, int at) {
    return (b[at] & 0xffL)
        | (b[at + 1] & 0xffL) << 8
        | (b[at + 2] & 0xffL) << 16
        | (b[at + 3] & 0xffL) << 24;
  }

  private static long align(long v, long a) {
    return (v + a - 1) / a * a;
  }

  private static ByteBuffer read(ByteSource src, long offset, int len) throws IOException {
    if (offset < 0 || len < 0 || offset + len > src.size()) {
      throw new ErofsFormatException(
          "read of "
              + len
              + " bytes at "
              + offset
              + " outside the image ("
              + src.size()
              + " bytes)");
    }
    ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
    src.read(offset, b);
    return b.clear();
  }
}

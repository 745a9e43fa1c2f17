package dev.lazypull.erofs;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Where the data of an EROFS compressed inode (layouts COMPRESSED_FULL and COMPRESSED_COMPACT, as mkfs.erofs
 * {@code -z} writes them) lies: the physical clusters (pclusters) its logical-cluster indexes point at, an inline
 * tail pcluster (ztailpacking) and fragments in the packed inode. The kernel decompresses; lazypull only needs the
 * stored byte ranges, to prefetch and summarize them. Follows the kernel's fs/erofs/zmap.c: the z_erofs_map_header
 * at the 8-aligned end of the inode and its xattrs, then either 8-byte full lcluster indexes (after 8 more
 * reserved bytes) or compacted 4-byte/2-byte packs whose last 4 bytes hold a base block address.
 *
 * <p>Untrusted input: every read is bounded by the image, the index count by the file size, and anything the
 * kernel would refuse (unknown lcluster types, a big-pcluster count where none may be, lcluster sizes it does not
 * support) is an {@link ErofsFormatException}.
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
  /** On the first NONHEAD lcluster of a big pcluster: the low bits are its compressed block count. */
  static final int D0_CBLKCNT = 1 << 11;
  static final int INCOMPAT_BIG_PCLUSTER = 0x2;
  static final int INCOMPAT_ZTAILPACKING = 0x10;
  static final int INCOMPAT_FRAGMENTS = 0x20;
  /** Bit 7 of h_clusterbits: the whole file lives in the packed inode. */
  static final int FRAGMENT_INODE_BIT = 0x80;

  /** A physical byte range in the image's address space (device 0 or a mapped extra device), or inline metadata. */
  record Range(long offset, long length) {}

  /** What a compressed inode occupies: pclusters, the inline tail, and whether it uses the packed inode. */
  record Result(List<Range> ranges, boolean usesPackedInode) {}

  private record Lcluster(int type, int lo, long blkaddr) {}

  private CompressedExtents() {}

  /**
   * @param indexStart byte offset of the end of the inode and its inline xattrs
   * @param sb the superblock (feature bits, block size)
   */
  static Result of(ByteSource src, Superblock sb, long nid, InodeRecord r, long indexStart) throws IOException {
    int blkbits = sb.blkszbits();
    long size = r.size();
    boolean full = r.layout() == InodeRecord.COMPRESSED_FULL;
    int incompat = sb.featureIncompat();
    long headerPos = align(indexStart, 8);
    int advise;
    int lclusterbits;
    int idataSize = 0;
    boolean wholeFragment = false;
    if (full && (incompat & (INCOMPAT_BIG_PCLUSTER | INCOMPAT_ZTAILPACKING | INCOMPAT_FRAGMENTS)) == 0) {
      advise = 0; // the oldest images: no map header to trust, 4 KiB lclusters, one block per pcluster
      lclusterbits = blkbits;
    } else {
      ByteBuffer h = read(src, headerPos, 8);
      advise = h.getShort(4) & 0xffff;
      int clusterbits = h.get(7) & 0xff;
      wholeFragment = (clusterbits & FRAGMENT_INODE_BIT) != 0;
      lclusterbits = blkbits + (clusterbits & 7);
      idataSize = h.getShort(2) & 0xffff;
      if (wholeFragment) {
        return new Result(List.of(), true);
      }
    }
    List<Range> out = new ArrayList<>();
    boolean fragment = (advise & ADVISE_FRAGMENT_PCLUSTER) != 0;
    boolean inline = (advise & ADVISE_INLINE_PCLUSTER) != 0;
    if (size == 0) {
      return new Result(out, false);
    }
    if (lclusterbits > 30) {
      throw new ErofsFormatException("nid " + nid + ": logical cluster size 2^" + lclusterbits);
    }
    long total = (size + (1L << lclusterbits) - 1) >>> lclusterbits;
    if (total > src.size()) { // every lcluster takes at least 2 bytes of index
      throw new ErofsFormatException("nid " + nid + ": " + total + " logical clusters for an image of "
          + src.size() + " bytes");
    }
    Lcluster[] lcs;
    long indexEnd;
    if (full) {
      long base = headerPos + 16;
      if (base + total * 8 > src.size()) {
        throw new ErofsFormatException("nid " + nid + ": " + total + " full lcluster indexes run past the image");
      }
      lcs = new Lcluster[(int) total];
      for (long done = 0; done < total; ) {
        int n = (int) Math.min(total - done, 8192);
        ByteBuffer b = read(src, base + done * 8, n * 8);
        for (int k = 0; k < n; k++) {
          int adv = b.getShort(k * 8) & 0xffff;
          int type = adv & 3;
          int clusterofs = b.getShort(k * 8 + 2) & 0xffff;
          lcs[(int) (done + k)] = type == TYPE_NONHEAD
              ? new Lcluster(type, b.getShort(k * 8 + 4) & 0xffff, -1)
              : new Lcluster(type, clusterofs, Integer.toUnsignedLong(b.getInt(k * 8 + 4)));
        }
        done += n;
      }
      indexEnd = base + total * 8;
    } else {
      if (lclusterbits != blkbits || lclusterbits > 14) {
        throw new ErofsFormatException("nid " + nid + ": compacted indexes with 2^" + lclusterbits
            + "-byte logical clusters");
      }
      if (((advise & ADVISE_BIG_PCLUSTER_1) == 0) != ((advise & ADVISE_BIG_PCLUSTER_2) == 0)) {
        throw new ErofsFormatException("nid " + nid + ": compacted indexes with one big-pcluster head type only");
      }
      long[] end = new long[1];
      lcs = compacted(src, nid, headerPos + 8, (int) total, lclusterbits, advise, end);
      indexEnd = end[0];
    }
    // the tail extent's head: the last HEAD/PLAIN lcluster (extents tile the file in logical order)
    int tailHead = -1;
    for (int i = lcs.length - 1; i >= 0; i--) {
      if (lcs[i].type != TYPE_NONHEAD && ((long) i << lclusterbits) + lcs[i].lo < size) {
        tailHead = i;
        break;
      }
    }
    if (tailHead < 0 && !fragment) {
      throw new ErofsFormatException("nid " + nid + ": no head logical cluster");
    }
    for (int i = 0; i < lcs.length; i++) {
      Lcluster l = lcs[i];
      if (l.type == TYPE_NONHEAD) {
        continue;
      }
      if (((long) i << lclusterbits) + l.lo >= size) {
        continue; // its extent would start at or past the end of the file: no read ever maps it
      }
      if (inline && i == tailHead) {
        if (idataSize == 0 || indexEnd % sb.blockSize() + idataSize > sb.blockSize()) {
          throw new ErofsFormatException("nid " + nid + ": inline pcluster of " + idataSize + " bytes at "
              + indexEnd);
        }
        out.add(new Range(indexEnd, idataSize)); // in the metadata, right after the indexes
        continue;
      }
      boolean big = (l.type == TYPE_HEAD1 && (advise & ADVISE_BIG_PCLUSTER_1) != 0)
          || ((l.type == TYPE_PLAIN || l.type == TYPE_HEAD2) && (advise & ADVISE_BIG_PCLUSTER_2) != 0);
      long length = 1L << lclusterbits;
      if (big && ((long) i << lclusterbits) < size && i + 1 < lcs.length) {
        Lcluster next = lcs[i + 1];
        if (next.type == TYPE_NONHEAD) {
          if ((next.lo & D0_CBLKCNT) == 0 || (next.lo & ~D0_CBLKCNT) == 0) {
            throw new ErofsFormatException("nid " + nid + ": big pcluster at lcluster " + i
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
      out.add(new Range(l.blkaddr << blkbits, length));
    }
    return new Result(out, fragment);
  }

  /** Decodes every lcluster of compacted indexes, with each HEAD's block address as the kernel derives it. */
  private static Lcluster[] compacted(ByteSource src, long nid, long ebase, int total, int lclusterbits,
      int advise, long[] end) throws IOException {
    int c4initial = (int) (((32 - ebase % 32) / 4) & 7);
    int c2b = 0;
    if ((advise & ADVISE_COMPACTED_2B) != 0 && c4initial < total) {
      c2b = (total - c4initial) / 16 * 16;
    }
    boolean big = (advise & ADVISE_BIG_PCLUSTER_1) != 0;
    int lobits = Math.max(lclusterbits, 12);
    Lcluster[] out = new Lcluster[total];
    long pos = ebase;
    int lcn = 0;
    // three regions: initial 4-byte packs, 2-byte packs, final 4-byte packs
    int[][] regions = {{Math.min(c4initial, total), 4}, {c2b, 2}, {total - Math.min(c4initial, total) - c2b, 4}};
    for (int[] region : regions) {
      int count = region[0];
      int unit = region[1];
      int vcnt = unit == 4 ? 2 : 16;
      int packBytes = vcnt * unit;
      int encodebits = (packBytes - 4) * 8 / vcnt;
      for (int first = 0; first < count; first += vcnt) {
        if (pos + packBytes > src.size()) {
          throw new ErofsFormatException("nid " + nid + ": compacted indexes run past the image");
        }
        ByteBuffer pack = read(src, pos, packBytes);
        byte[] in = new byte[packBytes + 4];
        pack.get(0, in, 0, packBytes);
        long base = Integer.toUnsignedLong(pack.getInt(packBytes - 4));
        int n = Math.min(vcnt, count - first);
        int[] types = new int[vcnt];
        int[] los = new int[vcnt];
        for (int i = 0; i < vcnt; i++) {
          int bit = encodebits * i;
          int v = (int) (le32(in, bit / 8) >>> (bit & 7));
          los[i] = v & ((1 << lobits) - 1);
          types[i] = (v >>> lobits) & 3;
        }
        for (int i = 0; i < n; i++) {
          if (types[i] == TYPE_NONHEAD) {
            out[lcn + i] = new Lcluster(TYPE_NONHEAD, los[i], -1);
          } else {
            out[lcn + i] = new Lcluster(types[i], los[i], base + blocksBefore(nid, types, los, i, big));
          }
        }
        lcn += n;
        pos += packBytes;
      }
    }
    end[0] = pos;
    return out;
  }

  /** The kernel's count of blocks taken by the pclusters before HEAD lcluster {@code i} of its pack. */
  private static long blocksBefore(long nid, int[] types, int[] los, int i, boolean big) throws ErofsFormatException {
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
    return (b[at] & 0xffL) | (b[at + 1] & 0xffL) << 8 | (b[at + 2] & 0xffL) << 16 | (b[at + 3] & 0xffL) << 24;
  }

  private static long align(long v, long a) {
    return (v + a - 1) / a * a;
  }

  private static ByteBuffer read(ByteSource src, long offset, int len) throws IOException {
    if (offset < 0 || len < 0 || offset + len > src.size()) {
      throw new ErofsFormatException("read of " + len + " bytes at " + offset + " outside the image ("
          + src.size() + " bytes)");
    }
    ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
    src.read(offset, b);
    return b.clear();
  }
}

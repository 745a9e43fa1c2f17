package dev.lazypull.erofs;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads an EROFS image: superblock, inodes, directories, symlinks, xattrs, chunk indexes, and where
 * any regular file's data lies ({@link #dataExtents}: flat blocks, inline tails, chunks, and the
 * pclusters of compressed inodes as mkfs.erofs {@code -z} writes them; the kernel decompresses,
 * lazypull only serves the stored bytes). Used by {@code inspect}, {@code prefetch --path}, tests
 * and fuzzers, never by the kernel path.
 *
 * <p>Untrusted input: every offset and length is checked against the image size before it is read
 * or allocated, so a malformed image is an {@link ErofsFormatException} (or an I/O error from the
 * source), never an endless loop or an unbounded allocation. {@link #walk} visits each directory
 * once (a directory reached twice is a cycle and rejected) and reads at most the image's own bytes
 * of directory data.
 */
public final class ErofsReader {
  /** An inode and where it lives. */
  public record Inode(long nid, long offset, InodeRecord record) {
    public FileType type() {
      return record.type();
    }

    public long size() {
      return record.size();
    }
  }

  /**
   * One chunk of a chunk-based file: device 0 is the bootstrap itself; {@code blkaddr} -1 is a
   * hole.
   */
  public record Chunk(int index, int device, long blkaddr) {
    public boolean isHole() {
      return blkaddr == 0xFFFFFFFFL;
    }
  }

  /**
   * Receives every path in a walk (root first, "" for the root; names as raw bytes joined by '/').
   */
  public interface Visitor {
    void visit(byte[] path, Inode inode) throws IOException;
  }

  private static final int MAX_DEPTH = 4096;

  /**
   * Largest directory we read: ~10 million entries; bounds what a lying i_size can make us
   * allocate.
   */
  private static final long MAX_FLAT = 256L << 20;

  private final ByteSource src;
  private final BootstrapHeader header;
  private final Superblock sb;
  private final int blockSize;

  private ErofsReader(ByteSource src, BootstrapHeader header) {
    this.src = src;
    this.header = header;
    this.sb = header.superblock();
    this.blockSize = sb.blockSize();
  }

  public static ErofsReader open(ByteSource src) throws IOException {
    if (src.size() < Superblock.OFFSET + Superblock.SIZE) {
      throw new ErofsFormatException(
          "image of " + src.size() + " bytes is too short for a superblock");
    }
    ByteBuffer first = read(src, 0, (int) Math.min(src.size(), 4096));
    Superblock sb = Superblock.decode(first);
    long need = BootstrapHeader.bytesNeeded(sb);
    if (need > src.size()) {
      throw new ErofsFormatException("image of " + src.size() + " bytes, header needs " + need);
    }
    ByteBuffer head = need > first.capacity() ? read(src, 0, (int) need) : first;
    BootstrapHeader header = BootstrapHeader.decode(head);
    if (sb.inodes() < 1) {
      throw new ErofsFormatException("image declares no inodes");
    }
    return new ErofsReader(src, header);
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

  public BootstrapHeader header() {
    return header;
  }

  public Inode root() throws IOException {
    return inode(sb.rootNid());
  }

  public Inode inode(long nid) throws IOException {
    long off = sb.metaBlkaddr() * blockSize + nid * 32;
    if (nid < 0 || nid > (src.size() / 32) || off + InodeRecord.COMPACT_SIZE > src.size()) {
      throw new ErofsFormatException("nid " + nid + " lies outside the image");
    }
    int len = (int) Math.min(InodeRecord.EXTENDED_SIZE, src.size() - off);
    InodeRecord r = InodeRecord.decode(read(src, off, len), 0, sb.buildTime(), sb.buildTimeNsec());
    if (r.type() == null) {
      throw new ErofsFormatException(
          "nid " + nid + ": unknown file type in mode 0" + Integer.toOctalString(r.mode()));
    }
    if (r.size() < 0) {
      throw new ErofsFormatException("nid " + nid + ": size " + Long.toUnsignedString(r.size()));
    }
    if (isCompressed(r) && r.type() != FileType.REGULAR) {
      throw new ErofsFormatException(
          "nid " + nid + ": compressed " + r.type() + " inodes are not supported");
    }
    if (off + r.inodeSize() + r.xattrSize() > src.size()) {
      throw new ErofsFormatException("nid " + nid + ": inode and xattrs run past the image");
    }
    return new Inode(nid, off, r);
  }

  /** Byte offset where the inline data (tail, or chunk indexes) area starts. */
  private long afterXattrs(Inode i) {
    return i.offset + i.record.inodeSize() + i.record.xattrSize();
  }

  /**
   * The data of a flat (non-chunked) inode stored in the image itself: directories and symlinks.
   * Bounded by the image size, so a lying i_size cannot make us allocate more than the image.
   */
  public byte[] readFlat(Inode i) throws IOException {
    InodeRecord r = i.record;
    long size = r.size();
    if (size > src.size() || size > MAX_FLAT) {
      throw new ErofsFormatException(
          "nid "
              + i.nid
              + ": "
              + size
              + " bytes of directory or symlink data (image "
              + src.size()
              + " bytes, limit "
              + MAX_FLAT
              + ")");
    }
    byte[] out = new byte[(int) size];
    long blocksBytes;
    if (r.layout() == InodeRecord.FLAT_PLAIN) {
      blocksBytes = size;
    } else if (r.layout() == InodeRecord.FLAT_INLINE) {
      blocksBytes = size / blockSize * blockSize;
    } else {
      throw new ErofsFormatException("nid " + i.nid + ": layout " + r.layout() + " is not flat");
    }
    if (blocksBytes > 0) {
      long start = Integer.toUnsignedLong(r.iu()) * blockSize;
      read(src, start, (int) blocksBytes).get(out, 0, (int) blocksBytes);
    }
    int tail = (int) (size - blocksBytes);
    if (tail > 0) {
      long at = afterXattrs(i);
      if (at / blockSize != (at + tail - 1) / blockSize) {
        throw new ErofsFormatException("nid " + i.nid + ": inline data crosses a block boundary");
      }
      read(src, at, tail).get(out, (int) blocksBytes, tail);
    }
    return out;
  }

  /** Directory entries, "." and ".." included, checked for sorted order, valid names and types. */
  public List<DirBlocks.Entry> readDir(Inode dir) throws IOException {
    if (dir.type() != FileType.DIRECTORY) {
      throw new ErofsFormatException("nid " + dir.nid + " is not a directory");
    }
    byte[] data = readFlat(dir);
    ByteBuffer b = ByteBuffer.wrap(data);
    List<DirBlocks.Entry> out = new ArrayList<>();
    for (long start = 0; start < data.length; start += blockSize) {
      int max = (int) Math.min(blockSize, data.length - start);
      out.addAll(DirBlocks.decodeBlock(b, (int) start, max));
    }
    for (int k = 0; k < out.size(); k++) {
      if (k > 0 && DirBlocks.NAME_ORDER.compare(out.get(k - 1).name(), out.get(k).name()) >= 0) {
        throw new ErofsFormatException(
            "nid " + dir.nid + ": directory entries not in strictly sorted order");
      }
      if (FileType.ofDirent(out.get(k).fileType()) == null) {
        throw new ErofsFormatException(
            "nid " + dir.nid + ": entry with file type " + out.get(k).fileType());
      }
    }
    return out;
  }

  public byte[] readLink(Inode link) throws IOException {
    if (link.type() != FileType.SYMLINK) {
      throw new ErofsFormatException("nid " + link.nid + " is not a symlink");
    }
    if (link.size() == 0 || link.size() > 4096) {
      throw new ErofsFormatException("nid " + link.nid + ": symlink of " + link.size() + " bytes");
    }
    return readFlat(link);
  }

  public Map<String, byte[]> xattrs(Inode i) throws IOException {
    int size = i.record.xattrSize();
    ByteBuffer area = read(src, i.offset + i.record.inodeSize(), size);
    return XattrCodec.decode(
        area,
        0,
        size,
        id -> {
          long at = sb.xattrBlkaddr() * blockSize + id * 4;
          try {
            int len = (int) Math.min(4 + 255 + 65535 + 4, src.size() - at);
            ByteBuffer b = read(src, at, Math.max(len, 0));
            return XattrCodec.decodeEntry(b, 0, b.capacity());
          } catch (ErofsFormatException e) {
            throw e;
          } catch (IOException e) {
            throw new ErofsFormatException("shared xattr " + id + ": " + e.getMessage());
          }
        });
  }

  /** log2 of the chunk size of a chunk-based inode. */
  public int chunkBits(Inode i) throws ErofsFormatException {
    int format = i.record.iu();
    if ((format & ~0x3F) != 0) {
      throw new ErofsFormatException(
          String.format("nid %d: unsupported chunk format 0x%x", i.nid, format));
    }
    return sb.blkszbits() + (format & InodeRecord.CHUNK_FORMAT_BLKBITS_MASK);
  }

  /** True for the compressed layouts (COMPRESSED_FULL, COMPRESSED_COMPACT). */
  public static boolean isCompressed(InodeRecord r) {
    return r.layout() == InodeRecord.COMPRESSED_FULL
        || r.layout() == InodeRecord.COMPRESSED_COMPACT;
  }

  /**
   * A range of stored bytes holding (part of) a file's data: {@code length} bytes at {@code offset}
   * of device {@code device} (0 = the bootstrap / primary device, k = extra device k).
   */
  public record Extent(int device, long offset, long length) {}

  /** Receives the extents of {@link #forEachDataExtent}. */
  public interface ExtentVisitor {
    void extent(Extent e) throws IOException;
  }

  /**
   * Every stored byte range that holds the data of regular file {@code i}, merged where contiguous
   * on one device: see {@link #forEachDataExtent}. A file of many scattered chunks or pclusters
   * makes a long list: walkers of untrusted images with huge files should visit instead.
   */
  public List<Extent> dataExtents(Inode i) throws IOException {
    List<Extent> out = new ArrayList<>();
    forEachDataExtent(
        i,
        e -> {
          Extent last = out.isEmpty() ? null : out.get(out.size() - 1);
          if (last != null
              && last.device() == e.device()
              && last.offset() + last.length() == e.offset()) {
            out.set(
                out.size() - 1, new Extent(e.device(), last.offset(), last.length() + e.length()));
          } else {
            out.add(e);
          }
        });
    return out;
  }

  /**
   * Visits every stored byte range that holds the data of regular file {@code i}, in file order (a
   * deduplicated chunk or pcluster may repeat): the blocks of a flat file and the block holding its
   * inline tail; each non-hole chunk of a chunk-based file ({@code min(chunk size, bytes left)}
   * bytes on its device); for a compressed file each physical cluster its indexes point at, its
   * inline tail pcluster (in the bootstrap, right after the indexes) and, when it keeps fragments
   * in the packed inode, the packed inode's extents. Block addresses of device 0 that fall inside
   * an extra device's {@code mapped_blkaddr} range are reported on that device, as the kernel
   * resolves them. Nothing for an empty file or a non-regular inode. Memory does not grow with the
   * file.
   */
  public void forEachDataExtent(Inode i, ExtentVisitor out) throws IOException {
    forEachDataExtent(i, out, 0);
  }

  private void forEachDataExtent(Inode i, ExtentVisitor out, int depth) throws IOException {
    InodeRecord r = i.record;
    long size = r.size();
    if (r.type() != FileType.REGULAR || size == 0) {
      return;
    }
    if (r.layout() == InodeRecord.CHUNK_BASED) {
      int bits = chunkBits(i);
      chunks(
          i,
          c -> {
            if (!c.isHole()) {
              long len = Math.min(1L << bits, size - ((long) c.index() << bits));
              out.extent(
                  c.device() == 0
                      ? locate(c.blkaddr() * blockSize, len)
                      : new Extent(c.device(), c.blkaddr() * blockSize, len));
            }
          });
    } else if (isCompressed(r)) {
      boolean packed =
          CompressedExtents.visit(
              src,
              sb,
              i.nid,
              r,
              afterXattrs(i),
              (offset, length) -> out.extent(locate(offset, length)));
      if (packed) {
        if (depth > 0) {
          throw new ErofsFormatException(
              "nid " + i.nid + ": the packed inode keeps fragments itself");
        }
        forEachDataExtent(inode(packedNid()), out, depth + 1);
      }
    } else {
      long blocksBytes =
          r.layout() == InodeRecord.FLAT_INLINE ? size / blockSize * blockSize : size;
      if (blocksBytes > 0 && Integer.toUnsignedLong(r.iu()) != 0xFFFFFFFFL) {
        out.extent(locate(Integer.toUnsignedLong(r.iu()) * blockSize, blocksBytes));
      }
      if (blocksBytes < size) {
        out.extent(
            new Extent(0, i.offset / blockSize * blockSize, blockSize)); // the inline tail's block
      }
    }
  }

  /** The nid of the packed inode (fragments), from the superblock. */
  private long packedNid() throws IOException {
    long nid = read(src, Superblock.OFFSET + 96, 8).getLong(0);
    if (nid <= 0) {
      throw new ErofsFormatException("fragments without a packed inode");
    }
    return nid;
  }

  /**
   * Where byte {@code pa} of the primary address space lives: on the extra device whose {@code
   * mapped_blkaddr} range holds it (as the kernel's erofs_map_dev resolves device-0 addresses),
   * else on device 0.
   */
  private Extent locate(long pa, long length) {
    List<DeviceSlot> devices = header.devices();
    for (int k = 0; k < devices.size(); k++) {
      DeviceSlot d = devices.get(k);
      if (d.mappedBlkaddr() == 0) {
        continue;
      }
      long start = d.mappedBlkaddr() * blockSize;
      if (pa >= start && pa < start + d.blocks() * blockSize) {
        return new Extent(k + 1, pa - start, length);
      }
    }
    return new Extent(0, pa, length);
  }

  /** Calls {@code each} for every chunk of a chunk-based file, in order. */
  public void chunks(Inode i, ChunkVisitor each) throws IOException {
    if (i.record.layout() != InodeRecord.CHUNK_BASED) {
      throw new ErofsFormatException("nid " + i.nid + " is not chunk-based");
    }
    int bits = chunkBits(i);
    if (bits > 62) {
      throw new ErofsFormatException("nid " + i.nid + ": chunk size 2^" + bits);
    }
    boolean indexes = (i.record.iu() & InodeRecord.CHUNK_FORMAT_INDEXES) != 0;
    int unit = indexes ? 8 : 4;
    long count = (i.size() + (1L << bits) - 1) >>> bits;
    if (i.size() > Long.MAX_VALUE - (1L << bits)) {
      throw new ErofsFormatException("nid " + i.nid + ": size overflows");
    }
    long start = (afterXattrs(i) + unit - 1) / unit * unit;
    if (count > (src.size() - start) / unit) {
      throw new ErofsFormatException(
          "nid " + i.nid + ": " + count + " chunk indexes run past the image");
    }
    int mask = deviceIdMask();
    long done = 0;
    while (done < count) {
      int n = (int) Math.min(count - done, 8192);
      ByteBuffer b = read(src, start + done * unit, n * unit);
      for (int k = 0; k < n; k++) {
        int idx = (int) (done + k);
        if (indexes) {
          int dev = b.getShort(k * 8 + 2) & 0xffff & mask;
          each.chunk(new Chunk(idx, dev, Integer.toUnsignedLong(b.getInt(k * 8 + 4))));
        } else {
          each.chunk(new Chunk(idx, 0, Integer.toUnsignedLong(b.getInt(k * 4))));
        }
      }
      done += n;
    }
  }

  /** The kernel masks chunk device ids with roundup_pow_of_two(extra_devices + 1) - 1. */
  private int deviceIdMask() {
    int n = header.devices().size() + 1;
    return Integer.highestOneBit(n) == n ? n - 1 : Integer.highestOneBit(n) * 2 - 1;
  }

  /** Receives chunks from {@link #chunks}. */
  public interface ChunkVisitor {
    void chunk(Chunk c) throws IOException;
  }

  /**
   * Visits every path depth-first (children in directory order). Checks that each entry's dirent
   * type matches its inode and that no directory is reached twice.
   */
  public void walk(Visitor visitor) throws IOException {
    Inode root = root();
    if (root.type() != FileType.DIRECTORY) {
      throw new ErofsFormatException("root nid " + root.nid + " is not a directory");
    }
    Set<Long> dirs = new HashSet<>();
    dirs.add(root.nid);
    record Frame(byte[] path, Inode dir, int depth) {}
    ArrayDeque<Frame> stack = new ArrayDeque<>();
    visitor.visit(new byte[0], root);
    stack.push(new Frame(new byte[0], root, 0));
    while (!stack.isEmpty()) {
      Frame f = stack.pop();
      List<DirBlocks.Entry> entries = readDir(f.dir);
      List<Frame> subdirs = new ArrayList<>();
      for (DirBlocks.Entry e : entries) {
        byte[] n = e.name();
        if ((n.length == 1 && n[0] == '.') || (n.length == 2 && n[0] == '.' && n[1] == '.')) {
          continue;
        }
        Inode child = inode(e.nid());
        if (child.type().direntType() != e.fileType()) {
          throw new ErofsFormatException(
              "entry "
                  + new String(n, StandardCharsets.UTF_8)
                  + ": dirent type "
                  + e.fileType()
                  + ", inode type "
                  + child.type());
        }
        byte[] path = join(f.path, n);
        visitor.visit(path, child);
        if (child.type() == FileType.DIRECTORY) {
          if (!dirs.add(child.nid)) {
            throw new ErofsFormatException(
                "directory nid " + child.nid + " is reached twice (a cycle)");
          }
          if (f.depth + 1 > MAX_DEPTH) {
            throw new ErofsFormatException("directories nested deeper than " + MAX_DEPTH);
          }
          subdirs.add(new Frame(path, child, f.depth + 1));
        }
      }
      for (int k = subdirs.size() - 1; k >= 0; k--) {
        stack.push(subdirs.get(k));
      }
    }
  }

  private static byte[] join(byte[] dir, byte[] name) {
    if (dir.length == 0) {
      return name.clone();
    }
    byte[] p = new byte[dir.length + 1 + name.length];
    System.arraycopy(dir, 0, p, 0, dir.length);
    p[dir.length] = '/';
    System.arraycopy(name, 0, p, dir.length + 1, name.length);
    return p;
  }
}

package dev.lazypull.erofs;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes an uncompressed EROFS bootstrap (4 KiB blocks) for a tree of {@link ErofsNode}s whose file
 * data already lives in data blobs (erofs-format §10 is the checklist this follows).
 *
 * <p>Layout: block 0 holds the superblock at 1024 and the device table at 1152, then the inodes,
 * packed in breadth-first order (root first, so its nid is small; a directory's children sit
 * together). Each inode is followed by its inline xattrs and then either its inline tail
 * (directories and symlinks; the whole record is kept inside one block so the tail never crosses a
 * block boundary) or its 8-byte chunk indexes (regular files). Full directory and symlink blocks
 * follow the inode area. The superblock checksum is computed last, over the final block 0.
 *
 * <p>Failure policy: anything the format cannot express (xattrs too large for one block, names
 * longer than 255 bytes, more than 2^32 blocks, a chunk outside its device) is an {@link
 * ErofsFormatException} before any inconsistent byte is relied on; the caller discards the output.
 */
public final class ErofsWriter {
  public static final int BLOCK_SIZE = 4096;
  public static final int BLKSZBITS = 12;
  private static final int DEVT_SLOTOFF = (Superblock.OFFSET + Superblock.SIZE) / DeviceSlot.SIZE;

  /**
   * @param chunkBits log2 of the chunk size of every chunk-based file (12..31)
   * @param buildTimeSec the superblock build time: the mtime of every compact inode
   */
  public record Options(int chunkBits, long buildTimeSec, int buildTimeNsec) {
    public Options {
      if (chunkBits < BLKSZBITS || chunkBits > BLKSZBITS + 31) {
        throw new IllegalArgumentException("chunk size 2^" + chunkBits + " out of range");
      }
    }
  }

  /** A data blob: its device tag (64-char sha256 hex) and size in bytes. */
  public record Device(String tag, long size) {}

  /** What was written. */
  public record Result(
      long size, long inodes, long rootNid, FlatLayout flatLayout, List<DeviceSlot> slots) {}

  private static final class Slot {
    final ErofsNode node;
    final ErofsNode parent;
    final long ino;
    long links;
    int subdirs;
    boolean extended;
    int inodeSize;
    int xattrSize;
    int layout;
    long size;
    int tail;
    long plainBlocks;
    long rawBlock;
    int chunkCount;
    long pos;

    Slot(ErofsNode node, ErofsNode parent, long ino) {
      this.node = node;
      this.parent = parent;
      this.ino = ino;
    }

    long nid() {
      return pos / 32;
    }
  }

  private final Options options;
  private final List<Device> devices;
  private final List<Slot> order = new ArrayList<>();
  private final Map<ErofsNode, Slot> slots = new IdentityHashMap<>();

  private ErofsWriter(Options options, List<Device> devices) {
    this.options = options;
    this.devices = List.copyOf(devices);
  }

  /**
   * Writes the bootstrap of {@code root} to {@code out} (from position 0; the channel is
   * truncated).
   */
  public static Result write(ErofsNode root, Options options, List<Device> devices, FileChannel out)
      throws IOException {
    if (!root.isDirectory()) {
      throw new IllegalArgumentException("the root must be a directory");
    }
    if (devices.size() > BootstrapHeader.MAX_DEVICES) {
      throw new ErofsFormatException(
          devices.size() + " data blobs (max " + BootstrapHeader.MAX_DEVICES + ")");
    }
    return new ErofsWriter(options, devices).run(root, out);
  }

  private Result run(ErofsNode root, FileChannel out) throws IOException {
    collect(root);
    boolean chunked = false;
    for (Slot s : order) {
      chunked |= plan(s);
    }
    long metaEnd = place();
    long blocks = placeData(metaEnd);
    long size = blocks * BLOCK_SIZE;
    List<Long> sizes = new ArrayList<>();
    for (Device d : devices) {
      sizes.add(d.size);
    }
    FlatLayout flat = FlatLayout.compute(size, sizes);
    List<DeviceSlot> deviceSlots = new ArrayList<>();
    for (int i = 0; i < devices.size(); i++) {
      FlatLayout.Extent e = flat.blobs().get(i);
      if (e.startBlock() + e.blocks() > 0xFFFFFFFFL) {
        throw new ErofsFormatException("data blobs exceed the 32-bit block address space");
      }
      deviceSlots.add(new DeviceSlot(devices.get(i).tag, e.blocks(), e.startBlock()));
    }
    out.truncate(0);
    SequentialWriter w = new SequentialWriter(out);
    for (Slot s : order) {
      writeInode(w, s);
    }
    for (Slot s : order) {
      writeData(w, s);
    }
    w.padTo(size);
    w.flush();
    writeHeader(out, root, chunked, blocks, deviceSlots);
    return new Result(size, order.size(), slots.get(root).nid(), flat, deviceSlots);
  }

  /** Breadth-first order; counts links (hard links are one node under several names). */
  private void collect(ErofsNode root) throws ErofsFormatException {
    Slot rs = new Slot(root, root, 1);
    slots.put(root, rs);
    order.add(rs);
    ArrayDeque<Slot> queue = new ArrayDeque<>();
    queue.add(rs);
    while (!queue.isEmpty()) {
      Slot dir = queue.poll();
      for (Map.Entry<byte[], ErofsNode> e : dir.node.children().entrySet()) {
        ErofsNode child = e.getValue();
        if (e.getKey().length > DirBlocks.MAX_NAME) {
          throw new ErofsFormatException("name longer than 255 bytes: " + show(e.getKey()));
        }
        Slot s = slots.get(child);
        if (s == null) {
          s = new Slot(child, dir.node, order.size() + 1);
          slots.put(child, s);
          order.add(s);
          if (child.isDirectory()) {
            queue.add(s);
          }
        } else if (child.isDirectory()) {
          throw new ErofsFormatException(
              "directory " + show(e.getKey()) + " appears twice in the tree");
        }
        s.links++;
        if (child.isDirectory()) {
          dir.subdirs++;
        }
      }
    }
  }

  /** Decides inode format, layout and sizes; returns true for a chunk-based inode. */
  private boolean plan(Slot s) throws ErofsFormatException {
    ErofsNode n = s.node;
    long nlink = n.isDirectory() ? 2L + s.subdirs : s.links;
    s.links = nlink;
    s.xattrSize = XattrCodec.areaSize(n.xattrs);
    switch (n.type()) {
      case DIRECTORY:
        s.size = DirBlocks.size(dirNames(n), BLOCK_SIZE);
        break;
      case SYMLINK:
        s.size = n.linkTarget.length;
        if (s.size == 0) {
          throw new ErofsFormatException("empty symlink target");
        }
        break;
      case REGULAR:
        s.size = n.size;
        break;
      default:
        s.size = 0;
    }
    s.extended =
        s.size > 0xFFFFFFFFL
            || n.uid > 0xFFFF
            || n.gid > 0xFFFF
            || nlink > 0xFFFF
            || n.mtimeSec != options.buildTimeSec
            || n.mtimeNsec != options.buildTimeNsec;
    s.inodeSize = s.extended ? InodeRecord.EXTENDED_SIZE : InodeRecord.COMPACT_SIZE;
    if (s.inodeSize + s.xattrSize > BLOCK_SIZE) {
      throw new ErofsFormatException(
          "extended attributes of "
              + s.xattrSize
              + " bytes do not fit one block "
              + "with their inode");
    }
    boolean chunked = false;
    if (n.type() == FileType.DIRECTORY || n.type() == FileType.SYMLINK) {
      s.tail = (int) (s.size % BLOCK_SIZE);
      if (s.tail > 0 && s.inodeSize + s.xattrSize + s.tail <= BLOCK_SIZE) {
        s.layout = InodeRecord.FLAT_INLINE;
        s.plainBlocks = s.size / BLOCK_SIZE;
      } else {
        s.layout = InodeRecord.FLAT_PLAIN;
        s.tail = 0;
        s.plainBlocks = (s.size + BLOCK_SIZE - 1) / BLOCK_SIZE;
      }
    } else if (n.type() == FileType.REGULAR && s.size > 0) {
      long chunkSize = 1L << options.chunkBits;
      long count = (s.size + chunkSize - 1) / chunkSize;
      if (n.chunks == null || n.chunks.length != count) {
        throw new IllegalStateException(
            "file of "
                + s.size
                + " bytes has "
                + (n.chunks == null ? "no" : n.chunks.length)
                + " chunk locations, expected "
                + count);
      }
      s.layout = InodeRecord.CHUNK_BASED;
      s.chunkCount = (int) count;
      chunked = true;
    } else {
      s.layout = InodeRecord.FLAT_PLAIN;
    }
    return chunked;
  }

  private static List<byte[]> dirNames(ErofsNode dir) {
    List<byte[]> names = new ArrayList<>(dir.children().size() + 2);
    names.add(new byte[] {'.'});
    names.add(new byte[] {'.', '.'});
    names.addAll(dir.children().keySet());
    names.sort(DirBlocks.NAME_ORDER);
    return names;
  }

  /**
   * Assigns each inode its byte position (its nid = pos / 32); returns the end of the inode area.
   */
  private long place() {
    long pos =
        align(Superblock.OFFSET + Superblock.SIZE + (long) devices.size() * DeviceSlot.SIZE, 32);
    for (Slot s : order) {
      int head = s.inodeSize + s.xattrSize;
      int need = s.layout == InodeRecord.FLAT_INLINE ? head + s.tail : head;
      if (pos % BLOCK_SIZE + need > BLOCK_SIZE) {
        pos = align(pos, BLOCK_SIZE);
      }
      s.pos = pos;
      long end = pos + need;
      if (s.layout == InodeRecord.CHUNK_BASED) {
        end = align(pos + head, 8) + 8L * s.chunkCount;
      }
      pos = align(end, 32);
    }
    return pos;
  }

  /**
   * Gives full directory/symlink blocks their addresses after the inode area; returns the total
   * blocks.
   */
  private long placeData(long metaEnd) throws ErofsFormatException {
    long next = align(metaEnd, BLOCK_SIZE) / BLOCK_SIZE;
    for (Slot s : order) {
      if (s.plainBlocks > 0) {
        s.rawBlock = next;
        next += s.plainBlocks;
      } else {
        s.rawBlock =
            s.layout == InodeRecord.FLAT_INLINE ? Integer.toUnsignedLong(InodeRecord.NULL_ADDR) : 0;
      }
    }
    if (next > 0xFFFFFFFFL) {
      throw new ErofsFormatException("bootstrap exceeds 2^32 blocks");
    }
    return next;
  }

  private void writeInode(SequentialWriter w, Slot s) throws IOException {
    ErofsNode n = s.node;
    int iu;
    switch (s.layout) {
      case InodeRecord.CHUNK_BASED:
        iu = (options.chunkBits - BLKSZBITS) | InodeRecord.CHUNK_FORMAT_INDEXES;
        break;
      case InodeRecord.FLAT_INLINE:
      case InodeRecord.FLAT_PLAIN:
        if (n.type() == FileType.CHAR_DEVICE || n.type() == FileType.BLOCK_DEVICE) {
          iu = InodeRecord.encodeDev(n.rdevMajor, n.rdevMinor);
        } else {
          iu = (int) s.rawBlock;
        }
        break;
      default:
        throw new IllegalStateException("layout " + s.layout);
    }
    InodeRecord rec =
        new InodeRecord(
            s.extended,
            s.layout,
            XattrCodec.icount(s.xattrSize),
            n.mode(),
            s.links,
            s.size,
            iu,
            s.ino,
            n.uid,
            n.gid,
            n.mtimeSec,
            n.mtimeNsec);
    int head = s.inodeSize + s.xattrSize;
    int recordLen = head + (s.layout == InodeRecord.FLAT_INLINE ? s.tail : 0);
    if (s.layout == InodeRecord.CHUNK_BASED) {
      recordLen = (int) (align(s.pos + head, 8) - s.pos) + 8 * s.chunkCount;
    }
    ByteBuffer b = ByteBuffer.allocate(recordLen).order(ByteOrder.LITTLE_ENDIAN);
    rec.encode(b, 0);
    XattrCodec.encode(n.xattrs, b, s.inodeSize);
    if (s.layout == InodeRecord.FLAT_INLINE) {
      byte[] data = dataOf(s);
      b.put(head, data, (int) (s.plainBlocks * BLOCK_SIZE), s.tail);
    } else if (s.layout == InodeRecord.CHUNK_BASED) {
      int at = (int) (align(s.pos + head, 8) - s.pos);
      for (long loc : n.chunks) {
        encodeChunk(b, at, loc);
        at += 8;
      }
    }
    w.write(s.pos, b.clear());
  }

  private void encodeChunk(ByteBuffer b, int at, long loc) throws ErofsFormatException {
    if (loc == ErofsNode.HOLE) {
      b.putShort(at, (short) 0);
      b.putShort(at + 2, (short) 0);
      b.putInt(at + 4, InodeRecord.NULL_ADDR);
      return;
    }
    int dev = ErofsNode.chunkDevice(loc);
    long blk = ErofsNode.chunkBlock(loc);
    if (dev < 1 || dev > devices.size()) {
      throw new ErofsFormatException("chunk on device " + dev + " of " + devices.size());
    }
    if (blk >= (devices.get(dev - 1).size + BLOCK_SIZE - 1) / BLOCK_SIZE) {
      throw new ErofsFormatException("chunk at block " + blk + " beyond the end of device " + dev);
    }
    b.putShort(at, (short) 0);
    b.putShort(at + 2, (short) dev);
    b.putInt(at + 4, (int) blk);
  }

  private void writeData(SequentialWriter w, Slot s) throws IOException {
    if (s.plainBlocks == 0) {
      return;
    }
    byte[] data = dataOf(s);
    int len = (int) Math.min(data.length, s.plainBlocks * BLOCK_SIZE);
    w.write(s.rawBlock * BLOCK_SIZE, ByteBuffer.wrap(data, 0, len));
    w.padTo((s.rawBlock + s.plainBlocks) * BLOCK_SIZE);
  }

  /** The data bytes of a directory (encoded dirents) or symlink (its target). */
  private byte[] dataOf(Slot s) {
    if (s.node.type() == FileType.SYMLINK) {
      return s.node.linkTarget;
    }
    List<DirBlocks.Entry> entries = new ArrayList<>(s.node.children().size() + 2);
    entries.add(new DirBlocks.Entry(new byte[] {'.'}, s.nid(), FileType.DIRECTORY.direntType()));
    entries.add(
        new DirBlocks.Entry(
            new byte[] {'.', '.'}, slots.get(s.parent).nid(), FileType.DIRECTORY.direntType()));
    for (Map.Entry<byte[], ErofsNode> e : s.node.children().entrySet()) {
      entries.add(
          new DirBlocks.Entry(
              e.getKey(), slots.get(e.getValue()).nid(), e.getValue().type().direntType()));
    }
    entries.sort((a, b) -> DirBlocks.NAME_ORDER.compare(a.name(), b.name()));
    return DirBlocks.encode(entries, BLOCK_SIZE);
  }

  private void writeHeader(
      FileChannel out, ErofsNode root, boolean chunked, long blocks, List<DeviceSlot> deviceSlots)
      throws IOException {
    ByteBuffer block0 = ByteBuffer.allocate(BLOCK_SIZE);
    readFully(out, block0, 0);
    block0.clear();
    int incompat =
        (chunked ? Superblock.INCOMPAT_CHUNKED_FILE : 0)
            | (devices.isEmpty() ? 0 : Superblock.INCOMPAT_DEVICE_TABLE);
    Superblock sb =
        Superblock.forImage(
            Superblock.COMPAT_SB_CHKSUM | Superblock.COMPAT_MTIME,
            BLKSZBITS,
            (int) slots.get(root).nid(),
            order.size(),
            options.buildTimeSec,
            options.buildTimeNsec,
            blocks,
            incompat,
            devices.size(),
            devices.isEmpty() ? 0 : DEVT_SLOTOFF);
    sb.encode(block0);
    for (int i = 0; i < deviceSlots.size(); i++) {
      int at = DEVT_SLOTOFF * DeviceSlot.SIZE + i * DeviceSlot.SIZE;
      if (at + DeviceSlot.SIZE <= BLOCK_SIZE) {
        deviceSlots.get(i).encode(block0, at);
      } else {
        ByteBuffer slot = ByteBuffer.allocate(DeviceSlot.SIZE);
        deviceSlots.get(i).encode(slot, 0);
        writeFully(out, slot, at);
      }
    }
    block0
        .order(ByteOrder.LITTLE_ENDIAN)
        .putInt(Superblock.OFFSET + 4, Superblock.computeChecksum(block0.clear(), BLOCK_SIZE));
    writeFully(out, block0.clear(), 0);
  }

  static long align(long v, long a) {
    return (v + a - 1) / a * a;
  }

  private static String show(byte[] name) {
    return new String(name, StandardCharsets.UTF_8);
  }

  private static void readFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
    while (b.hasRemaining()) {
      if (ch.read(b, pos + b.position()) < 0) {
        throw new IOException("bootstrap shorter than a block");
      }
    }
  }

  private static void writeFully(FileChannel ch, ByteBuffer b, long pos) throws IOException {
    long p = pos;
    while (b.hasRemaining()) {
      p += ch.write(b, p);
    }
  }

  /** Appends at increasing positions through a buffer, zero-filling gaps. */
  private static final class SequentialWriter {
    private static final byte[] ZEROS = new byte[BLOCK_SIZE];
    private final FileChannel out;
    private final ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
    private long written;

    SequentialWriter(FileChannel out) {
      this.out = out;
    }

    void write(long pos, ByteBuffer data) throws IOException {
      padTo(pos);
      if (pos != position()) {
        throw new IllegalStateException("write at " + pos + " behind " + position());
      }
      while (data.hasRemaining()) {
        if (!buf.hasRemaining()) {
          flush();
        }
        int n = Math.min(buf.remaining(), data.remaining());
        ByteBuffer slice = data.slice();
        slice.limit(n);
        buf.put(slice);
        data.position(data.position() + n);
      }
    }

    long position() {
      return written + buf.position();
    }

    void padTo(long pos) throws IOException {
      while (position() < pos) {
        if (!buf.hasRemaining()) {
          flush();
        }
        int n = (int) Math.min(Math.min(buf.remaining(), pos - position()), ZEROS.length);
        buf.put(ZEROS, 0, n);
      }
    }

    void flush() throws IOException {
      buf.flip();
      while (buf.hasRemaining()) {
        written += out.write(buf, written);
      }
      buf.clear();
    }
  }
}

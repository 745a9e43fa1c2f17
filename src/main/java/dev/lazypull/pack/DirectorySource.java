package dev.lazypull.pack;

import dev.lazypull.erofs.DirBlocks;
import dev.lazypull.erofs.ErofsNode;
import dev.lazypull.erofs.FileType;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Posix;
import dev.lazypull.sys.PosixFs;
import dev.lazypull.sys.StatX;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Reads a directory tree into {@link ErofsNode}s and streams its file data into a {@link
 * ChunkStore}.
 *
 * <p>Names and paths are raw bytes end to end (any byte string Linux allows, valid UTF-8 or not);
 * nothing is followed except SRC itself, so symlink loops are stored as the symlinks they are.
 * Metadata comes from statx: full mode, uid/gid, mtime with nanoseconds, rdev; xattrs from
 * llistxattr. Hard links are entries of any type but directory sharing (device, inode): one node
 * under several names, so one inode in the image. Device nodes, fifos and sockets need no
 * privilege: they are recorded, never opened.
 *
 * <p>Children are visited in bytewise name order, depth first, so file data lands in the blobs in
 * the same order on every run. File data is read with pread; whole-chunk holes found with SEEK_DATA
 * are not read. A file that cannot be read, or changes size while it is read, fails the build with
 * its path.
 */
public final class DirectorySource {
  /** Linux PATH_MAX: longer paths cannot be opened by name. */
  private static final int PATH_MAX = 4095;

  private static final ThreadLocal<ByteBuffer> PROBE =
      ThreadLocal.withInitial(() -> ByteBuffer.allocateDirect(1));

  private record SourceFile(ErofsNode node, byte[] path) {}

  private record InodeKey(long devMajor, long devMinor, long ino) {}

  private final byte[] root;
  private final Progress progress;
  private final List<SourceFile> files = new ArrayList<>();
  private final Map<InodeKey, ErofsNode> links = new HashMap<>();

  private DirectorySource(byte[] root, Progress progress) {
    this.root = root;
    this.progress = progress;
  }

  /**
   * Scans {@code root} and stores every regular file's data through {@code store}; returns the
   * tree.
   */
  public static ErofsNode read(byte[] root, ChunkStore store, Progress progress)
      throws IOException {
    DirectorySource src = new DirectorySource(root, progress);
    ErofsNode tree = src.scan();
    progress.stage("scanned " + progress.files.get() + " entries; storing file data");
    src.storeData(store);
    return tree;
  }

  private ErofsNode scan() throws IOException {
    StatX st = PosixFs.lstat(root);
    if (!st.isDirectory()) {
      throw new IOException(PosixFs.show(root) + " is not a directory");
    }
    ErofsNode top = node(root, st);
    record Frame(byte[] path, ErofsNode node, Iterator<byte[]> names) {}
    ArrayDeque<Frame> stack = new ArrayDeque<>();
    stack.push(new Frame(root, top, sortedNames(root)));
    while (!stack.isEmpty()) {
      Frame f = stack.peek();
      if (!f.names.hasNext()) {
        stack.pop();
        continue;
      }
      byte[] name = f.names.next();
      byte[] path = child(f.path, name);
      StatX cs = PosixFs.lstat(path);
      ErofsNode n;
      if (!cs.isDirectory()
          && cs.nlink() > 1) { // hard links of every type: files, symlinks, fifos, devices, sockets
        InodeKey key = new InodeKey(cs.devMajor(), cs.devMinor(), cs.ino());
        n = links.get(key);
        if (n == null) {
          n = node(path, cs);
          links.put(key, n);
        }
      } else {
        n = node(path, cs);
      }
      f.node.put(name, n);
      progress.fileAdded();
      if (n.isDirectory()) {
        stack.push(new Frame(path, n, sortedNames(path)));
      }
    }
    return top;
  }

  private static Iterator<byte[]> sortedNames(byte[] dir) throws ErrnoException {
    List<byte[]> names = PosixFs.listDirectory(dir);
    names.sort(DirBlocks.NAME_ORDER);
    return names.iterator();
  }

  private static byte[] child(byte[] dir, byte[] name) throws IOException {
    byte[] p = new byte[dir.length + 1 + name.length];
    System.arraycopy(dir, 0, p, 0, dir.length);
    p[dir.length] = '/';
    System.arraycopy(name, 0, p, dir.length + 1, name.length);
    if (p.length > PATH_MAX) {
      throw new IOException(
          "path longer than " + PATH_MAX + " bytes: " + PosixFs.show(p).substring(0, 200) + "…");
    }
    return p;
  }

  private ErofsNode node(byte[] path, StatX st) throws IOException {
    FileType type = FileType.ofMode(st.mode());
    if (type == null) {
      throw new IOException(
          PosixFs.show(path)
              + ": unknown file type (mode 0"
              + Integer.toOctalString(st.mode())
              + ")");
    }
    ErofsNode n = new ErofsNode(type);
    n.permissions = st.mode() & 07777;
    n.uid = st.uid();
    n.gid = st.gid();
    n.mtimeSec = st.mtimeSec();
    n.mtimeNsec = st.mtimeNsec();
    n.xattrs = PosixFs.xattrs(path);
    switch (type) {
      case REGULAR:
        n.size = st.size();
        files.add(new SourceFile(n, path));
        break;
      case SYMLINK:
        n.linkTarget = PosixFs.readlink(path);
        break;
      case CHAR_DEVICE:
      case BLOCK_DEVICE:
        n.rdevMajor = st.rdevMajor();
        n.rdevMinor = st.rdevMinor();
        break;
      default:
        break;
    }
    return n;
  }

  private void storeData(ChunkStore store) throws IOException {
    for (SourceFile f : files) {
      storeFile(f, store);
    }
  }

  private static void storeFile(SourceFile f, ChunkStore store) throws IOException {
    long size = f.node.size;
    if (size == 0) {
      return;
    }
    int chunk = store.chunkSize();
    long count = (size + chunk - 1) / chunk;
    if (count > Integer.MAX_VALUE) {
      throw new IOException(PosixFs.show(f.path) + ": too large for the chunk size");
    }
    f.node.chunks = new long[(int) count];
    int fd;
    try {
      // O_NONBLOCK: should the file have been swapped for a fifo since the scan, fail instead of
      // blocking.
      fd = PosixFs.openRead(f.path, Posix.O_NONBLOCK);
    } catch (ErrnoException e) {
      throw new IOException(
          "cannot read " + PosixFs.show(f.path) + ": " + Errno.describe(e.errno()), e);
    }
    try {
      for (int c = 0; c < count; c++) {
        long off = (long) c * chunk;
        int len = (int) Math.min(chunk, size - off);
        long data = Posix.lseek(fd, off, Posix.SEEK_DATA);
        if (data < 0 || data >= off + len) {
          f.node.chunks[c] =
              ErofsNode.HOLE; // a hole the size of the chunk: nothing to read or store
          continue;
        }
        ByteBuffer buf = store.acquire();
        try {
          readFully(fd, buf, off, len, f.path);
        } catch (IOException | RuntimeException e) {
          store.release(buf);
          throw e;
        }
        store.submit(f.node, c, buf);
      }
      if (Posix.pread(fd, PROBE.get().clear(), size) != 0) {
        throw new IOException(PosixFs.show(f.path) + " grew while it was being packed");
      }
    } finally {
      Posix.closeQuietly(fd);
    }
  }

  private static void readFully(int fd, ByteBuffer buf, long off, int len, byte[] path)
      throws IOException {
    buf.clear().limit(len);
    while (buf.hasRemaining()) {
      long n;
      try {
        n = Posix.pread(fd, buf, off + buf.position());
      } catch (ErrnoException e) {
        throw new IOException(
            "cannot read " + PosixFs.show(path) + ": " + Errno.describe(e.errno()), e);
      }
      if (n == 0) {
        throw new IOException(PosixFs.show(path) + " shrank while it was being packed");
      }
      buf.position(buf.position() + (int) n);
    }
  }
}

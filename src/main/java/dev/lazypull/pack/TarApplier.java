package dev.lazypull.pack;

import dev.lazypull.erofs.ErofsNode;
import dev.lazypull.erofs.FileType;
import dev.lazypull.tar.TarEntry;
import dev.lazypull.tar.TarFormatException;
import dev.lazypull.tar.TarPaths;
import dev.lazypull.tar.TarReader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Applies tar streams to one tree, in order: a plain tar for {@code pack}, or the layers of a
 * container image for {@code convert} (with OCI whiteouts: {@code .wh.NAME} deletes NAME from lower
 * layers, {@code .wh..wh..opq} empties a directory of everything lower layers put there).
 *
 * <p>Paths resolve inside the tree only: a symlink met as an intermediate component is followed
 * within the image root (absolute targets start at the root, ".." stops at it), as container
 * runtimes do when they unpack layers; more than 40 links on one path is reported as a symlink
 * loop. Missing parent directories are created (mode 0755, owner 0, the entry's mtime). Later
 * entries replace earlier ones; a directory over a directory only updates its metadata. File data
 * goes straight from the stream into the {@link ChunkStore}.
 */
public final class TarApplier {
  private static final byte[] WHITEOUT = ".wh.".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] OPAQUE = ".wh..wh..opq".getBytes(StandardCharsets.US_ASCII);
  private static final int MAX_LINKS = 40;

  /**
   * Where a regular file's data goes: {@link ChunkStore} chunks ({@code pack}, {@code convert}), or
   * a side-car index that only records where the data lies in the tar ({@code index}).
   */
  public interface FileData {
    /**
     * Stores the data of {@code file} (its size set): {@code data} yields exactly {@code file.size}
     * bytes, which start at byte {@code tarOffset} of the (uncompressed) tar. Sets {@code
     * file.chunks}.
     */
    void store(ErofsNode file, TarEntry entry, long tarOffset, InputStream data) throws IOException;
  }

  private final ErofsNode root;
  private final FileData fileData;
  private final Progress progress;
  private int currentLayer;

  public TarApplier(ChunkStore store, Progress progress) {
    this(chunksIn(store), progress);
  }

  public TarApplier(FileData fileData, Progress progress) {
    this.fileData = fileData;
    this.progress = progress;
    this.root = new ErofsNode(FileType.DIRECTORY);
    root.permissions = 0755;
  }

  public ErofsNode root() {
    return root;
  }

  /** Applies one tar stream as layer {@code layer} (1-based); whiteouts are honoured when asked. */
  public void apply(InputStream tar, String what, int layer, boolean whiteouts) throws IOException {
    TarReader reader = new TarReader(tar, what);
    currentLayer = layer;
    TarEntry e;
    while ((e = reader.next()) != null) {
      try {
        applyEntry(e, reader, layer, whiteouts);
      } catch (TarFormatException ex) {
        throw new TarFormatException(what + ": " + ex.getMessage());
      }
      progress.fileAdded();
    }
  }

  private void applyEntry(TarEntry e, TarReader reader, int layer, boolean whiteouts)
      throws IOException {
    List<byte[]> path = e.path();
    if (path.isEmpty()) {
      if (e.type() != TarEntry.Type.DIRECTORY) {
        throw new TarFormatException("the archive root is a " + e.type());
      }
      setMetadata(root, e, layer);
      return;
    }
    byte[] name = e.name();
    ErofsNode parent = resolveDir(path.subList(0, path.size() - 1), e, true);
    if (whiteouts && startsWith(name, WHITEOUT)) {
      if (Arrays.equals(name, OPAQUE)) {
        Iterator<Map.Entry<byte[], ErofsNode>> it = parent.children().entrySet().iterator();
        while (it.hasNext()) {
          if (it.next().getValue().layer < layer) {
            it.remove();
          }
        }
      } else {
        parent.remove(Arrays.copyOfRange(name, WHITEOUT.length, name.length));
      }
      return;
    }
    ErofsNode existing = parent.child(name);
    switch (e.type()) {
      case DIRECTORY:
        if (existing != null && existing.isDirectory()) {
          setMetadata(existing, e, layer);
        } else {
          ErofsNode d = new ErofsNode(FileType.DIRECTORY);
          setMetadata(d, e, layer);
          parent.put(name, d);
        }
        return;
      case HARDLINK:
        {
          ErofsNode target = resolve(TarPaths.split(e.linkTarget()), e);
          if (target == null) {
            throw new TarFormatException(
                "hard link " + e.show() + " to missing " + TarPaths.show(e.linkTarget()));
          }
          if (target.isDirectory()) {
            throw new TarFormatException("hard link " + e.show() + " to a directory");
          }
          if (target != existing) {
            parent.put(name, target);
          }
          return;
        }
      default:
        break;
    }
    ErofsNode n = new ErofsNode(fileType(e.type()));
    setMetadata(n, e, layer);
    switch (e.type()) {
      case SYMLINK:
        n.linkTarget = e.linkTarget();
        break;
      case CHAR_DEVICE:
      case BLOCK_DEVICE:
        n.rdevMajor = e.devMajor();
        n.rdevMinor = e.devMinor();
        break;
      case REGULAR:
        n.size = e.size();
        if (n.size > 0) {
          fileData.store(n, e, reader.position(), reader.data());
        }
        break;
      default:
        break;
    }
    parent.put(name, n);
  }

  private static FileType fileType(TarEntry.Type t) {
    switch (t) {
      case REGULAR:
        return FileType.REGULAR;
      case SYMLINK:
        return FileType.SYMLINK;
      case CHAR_DEVICE:
        return FileType.CHAR_DEVICE;
      case BLOCK_DEVICE:
        return FileType.BLOCK_DEVICE;
      case FIFO:
        return FileType.FIFO;
      default:
        throw new IllegalArgumentException(t.toString());
    }
  }

  private static void setMetadata(ErofsNode n, TarEntry e, int layer) {
    n.permissions = e.mode();
    n.uid = e.uid();
    n.gid = e.gid();
    n.mtimeSec = e.mtimeSec();
    n.mtimeNsec = e.mtimeNsec();
    n.xattrs = e.xattrs();
    n.layer = layer;
  }

  /** File data cut into chunks of a {@link ChunkStore}. */
  static FileData chunksIn(ChunkStore store) {
    byte[] copy = new byte[1 << 16];
    return (n, e, tarOffset, data) -> {
      int chunk = store.chunkSize();
      long count = (n.size + chunk - 1) / chunk;
      if (count > Integer.MAX_VALUE) {
        throw new TarFormatException(e.show() + ": too large for the chunk size");
      }
      n.chunks = new long[(int) count];
      for (int c = 0; c < count; c++) {
        int len = (int) Math.min(chunk, n.size - (long) c * chunk);
        ByteBuffer buf = store.acquire();
        try {
          while (buf.position() < len) {
            int r = data.read(copy, 0, Math.min(copy.length, len - buf.position()));
            if (r < 0) {
              throw new TarFormatException(e.show() + ": data ends early");
            }
            buf.put(copy, 0, r);
          }
        } catch (IOException | RuntimeException ex) {
          store.release(buf);
          throw ex;
        }
        store.submit(n, c, buf);
      }
    };
  }

  /**
   * Resolves a directory path, following symlinks inside the tree; creates missing directories if
   * asked.
   */
  private ErofsNode resolveDir(List<byte[]> path, TarEntry e, boolean create)
      throws TarFormatException {
    List<ErofsNode> stack = new ArrayList<>();
    stack.add(root);
    int[] hops = {0};
    for (byte[] c : path) {
      step(stack, c, e, create, hops);
    }
    return stack.get(stack.size() - 1);
  }

  /** Resolves a full path without following its last component; null when something is missing. */
  private ErofsNode resolve(List<byte[]> path, TarEntry e) throws TarFormatException {
    if (path.isEmpty()) {
      return root;
    }
    ErofsNode dir;
    try {
      dir = resolveDir(path.subList(0, path.size() - 1), e, false);
    } catch (MissingException m) {
      return null;
    }
    return dir.child(path.get(path.size() - 1));
  }

  private static final class MissingException extends TarFormatException {
    private static final long serialVersionUID = 1L;

    MissingException(String m) {
      super(m);
    }
  }

  private void step(List<ErofsNode> stack, byte[] c, TarEntry e, boolean create, int[] hops)
      throws TarFormatException {
    ErofsNode cur = stack.get(stack.size() - 1);
    if (c.length == 2 && c[0] == '.' && c[1] == '.') {
      if (stack.size() > 1) {
        stack.remove(stack.size() - 1);
      }
      return;
    }
    if (c.length == 0 || (c.length == 1 && c[0] == '.')) {
      return;
    }
    ErofsNode next = cur.child(c);
    if (next == null) {
      if (!create) {
        throw new MissingException(TarPaths.show(c));
      }
      next = new ErofsNode(FileType.DIRECTORY);
      next.permissions = 0755;
      next.mtimeSec = e.mtimeSec();
      next.layer = currentLayer;
      cur.put(c, next);
    }
    if (next.type() == FileType.SYMLINK) {
      if (++hops[0] > MAX_LINKS) {
        throw new TarFormatException(
            "entry " + e.show() + ": too many levels of symbolic links (a symlink loop)");
      }
      byte[] t = next.linkTarget;
      if (t.length > 0 && t[0] == '/') {
        while (stack.size() > 1) {
          stack.remove(stack.size() - 1);
        }
      }
      for (byte[] part : splitRaw(t)) {
        step(stack, part, e, create, hops);
      }
      return;
    }
    if (!next.isDirectory()) {
      throw new TarFormatException(
          "entry " + e.show() + ": " + TarPaths.show(c) + " is not a directory");
    }
    stack.add(next);
  }

  private static List<byte[]> splitRaw(byte[] raw) {
    List<byte[]> out = new ArrayList<>();
    int start = 0;
    for (int i = 0; i <= raw.length; i++) {
      if (i == raw.length || raw[i] == '/') {
        if (i > start) {
          out.add(Arrays.copyOfRange(raw, start, i));
        }
        start = i + 1;
      }
    }
    return out;
  }

  private static boolean startsWith(byte[] a, byte[] prefix) {
    return a.length >= prefix.length
        && Arrays.equals(a, 0, prefix.length, prefix, 0, prefix.length);
  }
}

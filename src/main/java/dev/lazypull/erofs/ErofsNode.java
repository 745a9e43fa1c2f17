package dev.lazypull.erofs;

import java.util.Collections;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;

/**
 * One file in a tree to be written as EROFS: what the writer needs, nothing else. Mutable while a
 * tree is being built (layers replace and delete entries); hard links are the same node under
 * several names.
 *
 * <p>Regular files carry their data as chunk locations ({@link #chunks}), filled in by whoever
 * stored the data in blobs: {@link #chunkLocation}{@code (device, block)} or {@link #HOLE}.
 */
public final class ErofsNode {
  /** A chunk that reads as zeros (not stored). */
  public static final long HOLE = -1L;

  private final FileType type;

  /** Permission bits including suid/sgid/sticky (the type bits come from {@link #type}). */
  public int permissions;

  public long uid;
  public long gid;
  public long mtimeSec;
  public int mtimeNsec;

  /** Device major/minor for device nodes. */
  public long rdevMajor;

  public long rdevMinor;

  /** Regular file size in bytes. */
  public long size;

  /** Symlink target bytes. */
  public byte[] linkTarget;

  /** Extended attributes, name → value. */
  public Map<String, byte[]> xattrs = Map.of();

  /** Regular file data: one location per chunk of the image's chunk size; null until stored. */
  public long[] chunks;

  /** Which source layer created this entry (image conversion uses it for opaque directories). */
  public int layer;

  private final NavigableMap<byte[], ErofsNode> children;

  public ErofsNode(FileType type) {
    this.type = type;
    this.children = type == FileType.DIRECTORY ? new TreeMap<>(DirBlocks.NAME_ORDER) : null;
  }

  public FileType type() {
    return type;
  }

  public boolean isDirectory() {
    return type == FileType.DIRECTORY;
  }

  /** Full st_mode: type bits plus permissions. */
  public int mode() {
    return type.modeBits() | (permissions & 07777);
  }

  /** Children by name, sorted bytewise; empty for non-directories. */
  public NavigableMap<byte[], ErofsNode> children() {
    return children == null ? Collections.emptyNavigableMap() : children;
  }

  public ErofsNode child(byte[] name) {
    return children == null ? null : children.get(name);
  }

  /** Adds or replaces a child; returns the node it replaced, if any. */
  public ErofsNode put(byte[] name, ErofsNode child) {
    if (children == null) {
      throw new IllegalStateException("not a directory");
    }
    if (name.length == 0 || name.length > DirBlocks.MAX_NAME) {
      throw new IllegalArgumentException("name of " + name.length + " bytes");
    }
    return children.put(name.clone(), child);
  }

  public ErofsNode remove(byte[] name) {
    return children == null ? null : children.remove(name);
  }

  /**
   * A chunk location on EROFS device {@code device} (1-based blob index) at block {@code block} of
   * it.
   */
  public static long chunkLocation(int device, long block) {
    return ((long) device << 32) | (block & 0xFFFFFFFFL);
  }

  public static int chunkDevice(long location) {
    return (int) (location >>> 32);
  }

  public static long chunkBlock(long location) {
    return location & 0xFFFFFFFFL;
  }
}

package dev.lazypull.tar;

import java.util.List;
import java.util.Map;

/**
 * One tar member, normalized: {@code path} as components (no "", ".", ".." and no component longer
 * than 255 bytes; empty for the archive root "./"), names as raw bytes.
 *
 * @param linkTarget the symlink target (raw, verbatim) or, for a hard link, the target path
 *     (normalized like {@code path}, components joined by '/')
 * @param size bytes of data that follow (regular files only; 0 for everything else)
 */
public record TarEntry(
    List<byte[]> path,
    Type type,
    int mode,
    long uid,
    long gid,
    long mtimeSec,
    int mtimeNsec,
    long size,
    byte[] linkTarget,
    long devMajor,
    long devMinor,
    Map<String, byte[]> xattrs) {

  /** Member types lazypull stores. */
  public enum Type {
    REGULAR,
    HARDLINK,
    SYMLINK,
    CHAR_DEVICE,
    BLOCK_DEVICE,
    DIRECTORY,
    FIFO
  }

  /** The last path component (null for the root). */
  public byte[] name() {
    return path.isEmpty() ? null : path.get(path.size() - 1);
  }

  /** The path for messages. */
  public String show() {
    return TarPaths.show(path);
  }
}

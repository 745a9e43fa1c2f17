package dev.lazypull.erofs;

/**
 * File types: the {@code st_mode} type bits and the EROFS dirent {@code file_type} code
 * (fs/erofs/erofs_fs.h).
 */
public enum FileType {
  REGULAR(0100000, 1),
  DIRECTORY(0040000, 2),
  CHAR_DEVICE(0020000, 3),
  BLOCK_DEVICE(0060000, 4),
  FIFO(0010000, 5),
  SOCKET(0140000, 6),
  SYMLINK(0120000, 7);

  public static final int S_IFMT = 0170000;

  private final int modeBits;
  private final int direntType;

  FileType(int modeBits, int direntType) {
    this.modeBits = modeBits;
    this.direntType = direntType;
  }

  public int modeBits() {
    return modeBits;
  }

  public int direntType() {
    return direntType;
  }

  /** The type of a full {@code st_mode}; null for an unknown type. */
  public static FileType ofMode(int mode) {
    int t = mode & S_IFMT;
    for (FileType f : values()) {
      if (f.modeBits == t) {
        return f;
      }
    }
    return null;
  }

  /** The type of a dirent code; null for 0 (unknown) or anything out of range. */
  public static FileType ofDirent(int code) {
    for (FileType f : values()) {
      if (f.direntType == code) {
        return f;
      }
    }
    return null;
  }
}

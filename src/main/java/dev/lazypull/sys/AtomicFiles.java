package dev.lazypull.sys;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;

/**
 * Files replaced whole: a reader (or a crash) sees the old file or the complete new one, never a
 * part.
 */
public final class AtomicFiles {
  private AtomicFiles() {}

  /**
   * Writes {@code bytes} to a temporary file beside {@code target} (created with {@code attrs};
   * mode 0600 when none), then renames it over {@code target}. The temporary file never outlives a
   * failure. Creates the parent directory if needed.
   */
  public static void write(Path target, byte[] bytes, FileAttribute<?>... attrs)
      throws IOException {
    Path dir = target.toAbsolutePath().getParent();
    Files.createDirectories(dir);
    Path tmp = Files.createTempFile(dir, "." + target.getFileName() + "-", ".tmp", attrs);
    try {
      Files.write(tmp, bytes);
      Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /**
   * As {@link #write}, and durable: the new file's bytes are synced before the rename and the
   * directory after it, so after a crash {@code target} is the old file or the complete new one,
   * and once this returns, the new.
   */
  public static void writeDurably(Path target, byte[] bytes) throws IOException {
    Path dir = target.toAbsolutePath().getParent();
    Files.createDirectories(dir);
    Path tmp = Files.createTempFile(dir, "." + target.getFileName() + "-", ".tmp");
    try {
      try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) {
          ch.write(b);
        }
        ch.force(false);
      }
      Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      Posix.fsyncDirectory(dir.toString());
    } finally {
      Files.deleteIfExists(tmp);
    }
  }
}

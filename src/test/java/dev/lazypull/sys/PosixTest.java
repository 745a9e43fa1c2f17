package dev.lazypull.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PosixTest {
  @TempDir Path tmp;

  @Test
  void sparseFilesReportDataExtentsAndAllocatedBytes() throws Exception {
    Path f = tmp.resolve("sparse");
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.setLength(16 << 20);
    }
    int fd = Posix.open(f.toString(), Posix.O_RDWR | Posix.O_DIRECT | Posix.O_CLOEXEC, 0);
    try {
      assertEquals(-1, Posix.lseek(fd, 0, Posix.SEEK_DATA), "all hole");
      ByteBuffer buf = AlignedBuffers.allocate(1 << 20);
      assertEquals(0, Posix.address(buf) % 4096);
      while (buf.hasRemaining()) {
        buf.put((byte) 7);
      }
      buf.flip();
      assertEquals(1 << 20, Posix.pwrite(fd, buf, 4 << 20));
      assertEquals(4 << 20, Posix.lseek(fd, 0, Posix.SEEK_DATA));
      assertEquals(5 << 20, Posix.lseek(fd, 4 << 20, Posix.SEEK_HOLE));
      assertTrue(Posix.allocatedBytes(f.toString()) >= 1 << 20);
      assertTrue(Posix.allocatedBytes(f.toString()) < 2 << 20, "holes cost nothing");
      ByteBuffer misaligned = AlignedBuffers.allocate(8192).position(1).limit(4097);
      ErrnoException e = assertThrows(ErrnoException.class, () -> Posix.pwrite(fd, misaligned, 0));
      assertEquals(Errno.EINVAL, e.errno(), "O_DIRECT refuses a misaligned buffer");
    } finally {
      Posix.close(fd);
    }
    ErrnoException e =
        assertThrows(
            ErrnoException.class,
            () -> Posix.open(tmp.resolve("none").toString(), Posix.O_RDONLY, 0));
    assertEquals(Errno.ENOENT, e.errno());
    assertTrue(e.getMessage().contains("No such file"), e.getMessage());
    assertTrue(Files.exists(f));
  }
}

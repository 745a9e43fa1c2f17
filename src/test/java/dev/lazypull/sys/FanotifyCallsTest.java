package dev.lazypull.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.testing.Requirements;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The checked fanotify and mount wrappers against the host kernel (root), and the option builder.
 */
class FanotifyCallsTest {
  @TempDir Path tmp;

  @Test
  void erofsOptionsListDevicesInOrderAndRefuseWhatTheSyntaxCannotCarry() {
    assertEquals(
        "device=/c/a,device=/c/b",
        Mounts.erofsOptions(List.of(Path.of("/c/a"), Path.of("/c/b")), null));
    assertEquals("device=/c/a,ro", Mounts.erofsOptions(List.of(Path.of("/c/a")), "ro"));
    assertEquals("", Mounts.erofsOptions(List.of(), ""));
    assertThrows(
        IllegalArgumentException.class,
        () -> Mounts.erofsOptions(List.of(Path.of("/c/a,b")), null));
    List<Path> many = Collections.nCopies(40, Path.of("/" + "x".repeat(120)));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Mounts.erofsOptions(many, null));
    assertTrue(e.getMessage().contains("4095"), e.getMessage());
  }

  @Test
  void marksAddRemoveAndFlushWithErrnosNamingTheCall() throws Exception {
    Requirements.requireRoot();
    Path file = Files.writeString(tmp.resolve("f"), "x");
    int group =
        Fanotify.init(
            Fanotify.FAN_CLASS_PRE_CONTENT | Fanotify.FAN_CLOEXEC | Fanotify.FAN_NONBLOCK,
            Posix.O_RDWR | Posix.O_CLOEXEC);
    try {
      Fanotify.markAdd(group, Fanotify.FAN_PRE_ACCESS, file.toString());
      Fanotify.markRemove(group, Fanotify.FAN_PRE_ACCESS, file.toString());
      ErrnoException gone =
          assertThrows(
              ErrnoException.class,
              () -> Fanotify.markRemove(group, Fanotify.FAN_PRE_ACCESS, file.toString()));
      assertEquals(Errno.ENOENT, gone.errno(), "no mark left to remove");
      assertEquals("fanotify_mark", gone.call());
      assertTrue(gone.getMessage().contains(file.toString()), gone.getMessage());
      ErrnoException missing =
          assertThrows(
              ErrnoException.class,
              () ->
                  Fanotify.markAdd(group, Fanotify.FAN_PRE_ACCESS, tmp.resolve("none").toString()));
      assertEquals(Errno.ENOENT, missing.errno());
      ErrnoException badMask =
          assertThrows(
              ErrnoException.class, () -> Fanotify.markAdd(group, 1L << 40, file.toString()));
      assertEquals(Errno.EINVAL, badMask.errno(), "upper 32 mask bits are reserved");
      int dirfd =
          Posix.open(tmp.toString(), Posix.O_RDONLY | Posix.O_DIRECTORY | Posix.O_CLOEXEC, 0);
      try {
        Fanotify.mark(group, Fanotify.FAN_MARK_ADD, Fanotify.FAN_PRE_ACCESS, dirfd, "f");
      } finally {
        Posix.close(dirfd);
      }
      Fanotify.flushInodeMarks(group);
      assertEquals(
          Errno.ENOENT,
          assertThrows(
                  ErrnoException.class,
                  () -> Fanotify.markRemove(group, Fanotify.FAN_PRE_ACCESS, file.toString()))
              .errno(),
          "flushed");
      ByteBuffer response = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder());
      response.putInt(Integer.MAX_VALUE).putInt(0x05000002).flip();
      ErrnoException noEvent =
          assertThrows(ErrnoException.class, () -> Posix.write(group, response));
      assertEquals(Errno.ENOENT, noEvent.errno(), "a valid response to no event");
    } finally {
      Posix.close(group);
    }
    ErrnoException closed =
        assertThrows(
            ErrnoException.class,
            () -> Fanotify.markAdd(group, Fanotify.FAN_PRE_ACCESS, file.toString()));
    assertEquals(Errno.EBADF, closed.errno());
  }

  @Test
  void mountAndUmountFailWithTheKernelsErrno() throws Exception {
    Requirements.requireRoot();
    Path mnt = Files.createDirectory(tmp.resolve("mnt"));
    Path junk = Files.write(tmp.resolve("junk"), new byte[8192]);
    ErrnoException notErofs =
        assertThrows(ErrnoException.class, () -> Mounts.mountErofsFile(junk, mnt, List.of()));
    assertEquals(Errno.EINVAL, notErofs.errno(), notErofs.getMessage());
    assertTrue(notErofs.getMessage().contains(junk.toString()), notErofs.getMessage());
    ErrnoException noSource =
        assertThrows(
            ErrnoException.class, () -> Mounts.mountErofsFile(tmp.resolve("none"), mnt, List.of()));
    assertEquals(Errno.ENOENT, noSource.errno());
    ErrnoException notMounted =
        assertThrows(ErrnoException.class, () -> Mounts.umount(mnt.toString(), 0));
    assertEquals(Errno.EINVAL, notMounted.errno());
    assertThrows(
        IllegalArgumentException.class,
        () -> Mounts.mount("a", mnt.toString(), "erofs", Mounts.MS_RDONLY, "x".repeat(5000)));
  }
}

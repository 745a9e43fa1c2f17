package dev.lazypull.fanotify;

import dev.lazypull.sys.PosixFs;
import dev.lazypull.sys.StatX;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * Which file an event is about: its device and inode. An event names its file only by an fd, so the
 * front end finds the served file by the identity of what that fd is open on.
 */
public record FileKey(long devMajor, long devMinor, long ino) {
  static FileKey of(StatX s) {
    return new FileKey(s.devMajor(), s.devMinor(), s.ino());
  }

  /** The identity of the file at {@code path} (not following a final symlink). */
  public static FileKey of(Path path) throws IOException {
    return of(PosixFs.lstat(path.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8)));
  }

  /** The identity of the file {@code fd} is open on. */
  public static FileKey ofFd(int fd) throws IOException {
    return of(PosixFs.fstat(fd));
  }
}

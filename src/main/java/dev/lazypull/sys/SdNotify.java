package dev.lazypull.sys;

import com.sun.jna.Native;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * systemd's notification protocol without libsystemd: one AF_UNIX datagram to {@code
 * $NOTIFY_SOCKET} ({@code READY=1}, {@code STATUS=…}, {@code WATCHDOG=1}, {@code FDSTORE=1} with
 * descriptors attached as SCM_RIGHTS). A leading '@' in the socket path names the Linux abstract
 * namespace. The JDK has no unix datagram sockets, hence JNA; struct layouts below are LP64 Linux.
 */
public final class SdNotify {
  private static final int SOCK_DGRAM = 2;
  private static final int SOL_SOCKET = 1;
  private static final int SCM_RIGHTS = 1;
  private static final int MSG_NOSIGNAL = 0x4000;

  private final String socketPath;

  private SdNotify(String socketPath) {
    this.socketPath = socketPath;
  }

  /** The notifier for {@code $NOTIFY_SOCKET}, or null when not run by a service manager. */
  public static SdNotify fromEnvironment() {
    String path = System.getenv("NOTIFY_SOCKET");
    return path == null || path.isEmpty() ? null : new SdNotify(path);
  }

  /** Sends {@code state} (newline-separated assignments), attaching {@code fds} if any. */
  public void send(String state, int... fds) throws ErrnoException {
    byte[] text = state.getBytes(StandardCharsets.UTF_8);
    byte[] path = socketPath.getBytes(StandardCharsets.UTF_8);
    if (path.length >= 108) {
      throw new IllegalArgumentException("NOTIFY_SOCKET path too long: " + socketPath);
    }
    // sockaddr_un: u16 family, then the path (abstract: leading NUL, length exact, no terminator)
    ByteBuffer addr = ByteBuffer.allocateDirect(110).order(ByteOrder.nativeOrder());
    addr.putShort(0, (short) Posix.AF_UNIX);
    for (int i = 0; i < path.length; i++) {
      addr.put(2 + i, path[i]);
    }
    int addrLen;
    if (path[0] == '@') {
      addr.put(2, (byte) 0);
      addrLen = 2 + path.length;
    } else {
      addrLen = 2 + path.length + 1;
    }
    ByteBuffer data = ByteBuffer.allocateDirect(Math.max(1, text.length));
    data.put(text).flip();
    ByteBuffer iov = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder());
    iov.putLong(0, Posix.address(data)).putLong(8, text.length);
    ByteBuffer control = null;
    if (fds.length > 0) {
      int cmsgLen = 16 + 4 * fds.length; // CMSG_LEN
      int space = (cmsgLen + 7) & ~7; // CMSG_SPACE
      control = ByteBuffer.allocateDirect(space).order(ByteOrder.nativeOrder());
      control.putLong(0, cmsgLen).putInt(8, SOL_SOCKET).putInt(12, SCM_RIGHTS);
      for (int i = 0; i < fds.length; i++) {
        control.putInt(16 + 4 * i, fds[i]);
      }
    }
    ByteBuffer msg = ByteBuffer.allocateDirect(56).order(ByteOrder.nativeOrder());
    msg.putLong(0, Posix.address(addr)).putInt(8, addrLen);
    msg.putLong(16, Posix.address(iov)).putLong(24, 1);
    if (control != null) {
      msg.putLong(32, Posix.address(control)).putLong(40, control.capacity());
    }
    int fd = LibC.socket(Posix.AF_UNIX, SOCK_DGRAM | Posix.SOCK_CLOEXEC, 0);
    if (fd < 0) {
      throw new ErrnoException("socket", "AF_UNIX datagram", Native.getLastError());
    }
    try {
      if (LibC.sendmsg(fd, Posix.address(msg), MSG_NOSIGNAL) < 0) {
        throw new ErrnoException("sendmsg", "NOTIFY_SOCKET " + socketPath, Native.getLastError());
      }
    } finally {
      Posix.closeQuietly(fd);
    }
  }
}

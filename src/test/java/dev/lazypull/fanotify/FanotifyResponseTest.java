package dev.lazypull.fanotify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.sys.Errno;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class FanotifyResponseTest {
  @Test
  void denyErrnoPutsTheErrnoInTheTopByte() {
    // FAN_DENY_ERRNO(err) = FAN_DENY | ((err & FAN_ERRNO_MASK) << FAN_ERRNO_SHIFT), shift 24, mask
    // 0xff
    assertEquals(0x05000002, FanotifyResponse.denyErrno(Errno.EIO));
    assertEquals(0x01000002, FanotifyResponse.denyErrno(Errno.EPERM));
    assertEquals(0x7a000002, FanotifyResponse.denyErrno(122));
    assertEquals(FanotifyResponse.DENY, FanotifyResponse.denyErrno(0));
    assertEquals(Errno.EIO, FanotifyResponse.errnoOf(FanotifyResponse.denyErrno(Errno.EIO)));
    assertEquals(0, FanotifyResponse.errnoOf(FanotifyResponse.ALLOW));
  }

  @Test
  void errnosTheKernelRefusesAreRejectedHere() {
    for (int errno :
        new int[] {Errno.ENOENT, Errno.EINVAL, Errno.ENOMEM, 256 + Errno.EIO, -Errno.EIO}) {
      assertThrows(
          IllegalArgumentException.class,
          () -> FanotifyResponse.denyErrno(errno),
          "errno " + errno);
    }
    assertFalse(
        FanotifyResponse.isValid(FanotifyResponse.ALLOW | (Errno.EIO << 24)),
        "ALLOW with an errno");
    assertFalse(
        FanotifyResponse.isValid(FanotifyResponse.DENY | 0x10), "FAN_AUDIT needs an audit group");
    assertFalse(FanotifyResponse.isValid(0));
    assertFalse(FanotifyResponse.isValid(FanotifyResponse.ALLOW | FanotifyResponse.DENY));
    assertTrue(FanotifyResponse.isValid(FanotifyResponse.denyErrno(Errno.EAGAIN)));
  }

  @Test
  void encodesFdThenResponseInNativeOrderAtThePosition() {
    ByteBuffer b = ByteBuffer.allocate(20).order(ByteOrder.BIG_ENDIAN);
    b.position(4);
    FanotifyResponse.encode(b, 0x01020304, FanotifyResponse.denyErrno(Errno.EIO));
    assertEquals(12, b.position());
    assertEquals(ByteOrder.BIG_ENDIAN, b.order());
    ByteBuffer n = ByteBuffer.wrap(b.array()).order(ByteOrder.nativeOrder());
    assertEquals(0x01020304, n.getInt(4));
    assertEquals(0x05000002, n.getInt(8));
    assertThrows(
        IllegalArgumentException.class,
        () -> FanotifyResponse.encode(ByteBuffer.allocate(8), -1, 1));
    assertThrows(
        IllegalArgumentException.class,
        () -> FanotifyResponse.encode(ByteBuffer.allocate(8), 3, 7));
  }

  @Test
  void describesResponsesForLogs() {
    assertEquals("ALLOW", FanotifyResponse.describe(FanotifyResponse.ALLOW));
    assertEquals("DENY", FanotifyResponse.describe(FanotifyResponse.DENY));
    assertTrue(
        FanotifyResponse.describe(FanotifyResponse.denyErrno(Errno.EIO))
            .startsWith("DENY(errno 5"));
    assertEquals("0x7", FanotifyResponse.describe(7));
  }
}

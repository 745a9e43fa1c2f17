package dev.lazypull.testing;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Encodes cachefiles messages the way the kernel lays them out (native order), for feeding the
 * decoder.
 */
public final class Msgs {
  private Msgs() {}

  public static byte[] open(int msgId, int objectId, String volumeKey, String cookieKey, int fd) {
    byte[] vol = (volumeKey + "\0").getBytes(StandardCharsets.ISO_8859_1);
    byte[] cookie = cookieKey.getBytes(StandardCharsets.ISO_8859_1);
    int len = 32 + vol.length + cookie.length;
    ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.nativeOrder());
    b.putInt(msgId).putInt(0).putInt(len).putInt(objectId);
    b.putInt(vol.length).putInt(cookie.length).putInt(fd).putInt(0);
    b.put(vol).put(cookie);
    return b.array();
  }

  public static byte[] read(int msgId, int objectId, long off, long len) {
    ByteBuffer b = ByteBuffer.allocate(32).order(ByteOrder.nativeOrder());
    b.putInt(msgId).putInt(2).putInt(32).putInt(objectId).putLong(off).putLong(len);
    return b.array();
  }

  public static byte[] close(int msgId, int objectId) {
    ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.nativeOrder());
    b.putInt(msgId).putInt(1).putInt(16).putInt(objectId);
    return b.array();
  }

  public static ByteBuffer wrap(byte[] bytes) {
    return ByteBuffer.wrap(bytes).order(ByteOrder.nativeOrder());
  }
}

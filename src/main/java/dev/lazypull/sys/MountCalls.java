package dev.lazypull.sys;

import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;

/** Direct-mapped mount(2) and umount2(2). Raw: checked by {@link Mounts}. */
final class MountCalls {
  static {
    Native.register(MountCalls.class, NativeLibrary.getInstance("c"));
  }

  private MountCalls() {}

  static native int mount(byte[] source, byte[] target, byte[] fstype, long flags, byte[] data);

  static native int umount2(byte[] target, int flags);
}

package dev.lazypull.fscache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class DevnodeCommandTest {
  @Test
  void formatsCommandsWithoutTerminator() {
    assertEquals("dir /var/cache/lazypull", DevnodeCommand.dir("/var/cache/lazypull"));
    assertEquals("tag lazypull", DevnodeCommand.tag("lazypull"));
    assertEquals("bind ondemand", DevnodeCommand.bindOndemand());
    assertEquals("copen 12,4096", DevnodeCommand.copen(12, 4096));
    assertEquals("copen 4294967295,0", DevnodeCommand.copen(-1, 0));
    assertEquals("copen 12,-2", DevnodeCommand.copenError(12, 2));
    assertEquals("restore", DevnodeCommand.restore());
    assertEquals("cull Dabc", DevnodeCommand.cull("Dabc"));
    assertEquals("inuse Dabc", DevnodeCommand.inuse("Dabc"));
  }

  @Test
  void refusesWhatTheKernelWouldReject() {
    assertThrows(IllegalArgumentException.class, () -> DevnodeCommand.dir("relative/path"));
    assertThrows(IllegalArgumentException.class, () -> DevnodeCommand.dir("/a\0b"));
    assertThrows(IllegalArgumentException.class, () -> DevnodeCommand.dir("/a\nb"));
    assertThrows(IllegalArgumentException.class, () -> DevnodeCommand.dir("/" + "x".repeat(5000)));
    assertThrows(IllegalArgumentException.class, () -> DevnodeCommand.tag("two words"));
    assertThrows(IllegalArgumentException.class, () -> DevnodeCommand.copen(1, -5));
    assertThrows(IllegalArgumentException.class, () -> DevnodeCommand.copenError(1, 0));
    assertThrows(IllegalArgumentException.class, () -> DevnodeCommand.copenError(1, 5000));
    assertThrows(IllegalArgumentException.class, () -> DevnodeCommand.cull("a/b"));
  }
}

package dev.lazypull.fanotify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.sys.Errno;
import dev.lazypull.sys.Posix;
import dev.lazypull.testing.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FanotifySupportTest {
  @TempDir Path tmp;

  @Test
  void kernelReleasesAndConfigsAreParsed() {
    FanotifySupport.Kernel k = FanotifySupport.Kernel.of("6.18.44-fc-v1272", Map.of());
    assertEquals(6, k.major());
    assertEquals(18, k.minor());
    assertTrue(k.atLeast(6, 14));
    assertFalse(FanotifySupport.Kernel.of("6.12.9-amd64", Map.of()).atLeast(6, 14));
    assertTrue(FanotifySupport.Kernel.of("7.2.0", Map.of()).atLeast(6, 14));
    assertFalse(FanotifySupport.Kernel.of("weird", Map.of()).atLeast(1, 0));
    assertNull(k.option("CONFIG_FANOTIFY"), "no config known");
    Map<String, String> config =
        FanotifySupport.parseConfig(
            List.of(
                "CONFIG_FANOTIFY=y",
                "CONFIG_EROFS_FS=m",
                "# CONFIG_EROFS_FS_BACKED_BY_FILE is not set",
                "# a comment",
                "CONFIG_X=\"str\""));
    FanotifySupport.Kernel c = FanotifySupport.Kernel.of("6.14.0", config);
    assertEquals("y", c.option("CONFIG_FANOTIFY"));
    assertEquals("m", c.option("CONFIG_EROFS_FS"));
    assertEquals("n", c.option("CONFIG_EROFS_FS_BACKED_BY_FILE"));
    assertEquals("n", c.option("CONFIG_FANOTIFY_ACCESS_PERMISSIONS"), "absent from a known config");
  }

  @Test
  void failuresNameWhatIsMissing() {
    FanotifySupport.Kernel old = FanotifySupport.Kernel.of("6.12.9", Map.of());
    FanotifySupport.Kernel noPerm =
        FanotifySupport.Kernel.of(
            "6.16.1",
            FanotifySupport.parseConfig(
                List.of("CONFIG_FANOTIFY=y", "# CONFIG_FANOTIFY_ACCESS_PERMISSIONS is not set")));
    assertTrue(FanotifySupport.explainMark(Errno.EINVAL, old, tmp.resolve("x")).contains("6.14"));
    assertTrue(
        FanotifySupport.explainMark(Errno.EINVAL, noPerm, tmp.resolve("x"))
            .contains("without CONFIG_FANOTIFY_ACCESS_PERMISSIONS"));
    assertTrue(
        FanotifySupport.explainMark(Errno.EOPNOTSUPP, noPerm, tmp.resolve("x"))
            .contains(tmp.toString()));
    assertTrue(FanotifySupport.explainInit(Errno.EPERM, old).contains("CAP_SYS_ADMIN"));
    assertTrue(FanotifySupport.explainInit(38, old).contains("CONFIG_FANOTIFY"));
    assertTrue(
        FanotifySupport.explainMount(15, old, "n")
            .contains("CONFIG_EROFS_FS_BACKED_BY_FILE=y, which is not"));
    assertTrue(FanotifySupport.explainMount(Errno.ENODEV, old, null).contains("no EROFS"));
    FanotifySupport.Check no =
        new FanotifySupport.Check(false, "kernel 6.12.9 predates pre-content events");
    FanotifySupport.Check yes = new FanotifySupport.Check(true, "ok");
    FanotifySupport.Report r = new FanotifySupport.Report("6.12.9", no, no, yes);
    assertFalse(r.usable());
    assertEquals(
        "fanotify front end unavailable on kernel 6.12.9: kernel 6.12.9 predates pre-content events",
        r.summary());
  }

  @Test
  void thisHostRunsTheFanotifyFrontEnd() throws Exception {
    Requirements.requireRoot();
    FanotifySupport.Report r = FanotifySupport.probe(tmp);
    assertTrue(r.preContent().ok(), r.summary());
    assertTrue(r.denyErrno().ok(), r.denyErrno().detail());
    assertTrue(r.fileBackedErofs().ok(), r.summary());
    assertTrue(r.usable());
    assertTrue(r.summary().startsWith("fanotify front end available"), r.summary());
    try (var left = Files.list(tmp)) {
      assertEquals(0, left.count(), "the probe cleans up after itself");
    }
    Path shm = Path.of("/dev/shm");
    if (Files.isDirectory(shm) && Posix.filesystemType(shm.toString()) == Posix.TMPFS_MAGIC) {
      FanotifySupport.Report onTmpfs = FanotifySupport.probe(shm);
      assertFalse(onTmpfs.usable());
      assertTrue(
          onTmpfs.preContent().detail().contains("tmpfs does not"), onTmpfs.preContent().detail());
    }
  }
}

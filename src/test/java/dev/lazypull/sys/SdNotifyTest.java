package dev.lazypull.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.VmHarness;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * sd_notify datagrams with SCM_RIGHTS, received by the fd-store supervisor used in failover tests.
 */
class SdNotifyTest {
  @TempDir Path tmp;

  @Test
  void fdStoreRoundTripThroughTheSupervisor() throws Exception {
    Requirements.requireTool("gcc");
    Path supervisor = tmp.resolve("fdstore-supervisor");
    Requirements.run(
        "gcc",
        "-O2",
        "-o",
        supervisor.toString(),
        VmHarness.baseDir().resolve("native-stubs/fdstore/fdstore-supervisor.c").toString());
    Path file = Files.writeString(tmp.resolve("stored-file"), "x");
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Process p =
        new ProcessBuilder(
                supervisor.toString(),
                "--restarts",
                "1",
                "--notify-socket",
                tmp.resolve("notify.sock").toString(),
                "--",
                java,
                "-cp",
                System.getProperty("java.class.path"),
                NotifyProbe.class.getName(),
                file.toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, p.exitValue(), out);
    assertTrue(out.contains("@@SUPERVISOR stored name=probe"), out);
    assertTrue(out.contains("@@SUPERVISOR status first run"), out);
    assertTrue(out.contains("@@SUPERVISOR restart"), out);
    assertTrue(out.contains("PROBE fd=3 target=" + file.toRealPath()), out);
    assertTrue(out.contains("@@SUPERVISOR status second run"), out);
  }

  @Test
  void listenFdsAreOnlyForTheNamedPid() {
    assertEquals(Map.of("cachefiles", 3, "x", 4), ListenFds.parse("42", "2", "cachefiles:x", 42));
    assertTrue(ListenFds.parse("41", "2", "cachefiles:x", 42).isEmpty());
    assertEquals(Map.of("unknown", 3), ListenFds.parse("42", "1", null, 42));
    assertTrue(ListenFds.parse("42", "bad", null, 42).isEmpty());
  }
}

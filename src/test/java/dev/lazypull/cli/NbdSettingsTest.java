package dev.lazypull.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.app.ExportConfig;
import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class NbdSettingsTest {
  @TempDir Path tmp;

  private NbdSettings resolve(String toml, String... args) throws Exception {
    Path f = tmp.resolve("config.toml");
    Files.writeString(f, toml);
    NbdCommand cmd = new NbdCommand();
    new CommandLine(cmd).parseArgs(args);
    return NbdSettings.resolve(cmd, ConfigFile.load(f, true));
  }

  @Test
  void nbdTableAppliesAndFlagsOverrideIt() throws Exception {
    NbdSettings s =
        resolve(
            """
        [nbd]
        cache_dir = "/srv/nbd"
        listen = "tcp:127.0.0.1:10809"
        threads = 8
        chunk_size = "256K"
        read_timeout = "5s"
        connections = 2
        """,
            "oci:/x",
            "--threads",
            "4",
            "--listen",
            "unix:/run/x.sock");
    assertEquals(Path.of("/srv/nbd"), s.cacheDir());
    assertEquals("unix:/run/x.sock", s.listen());
    assertEquals(4, s.fetch().threadsPerOrigin());
    assertEquals(256 << 10, s.fetch().chunkSize());
    assertEquals(Duration.ofSeconds(5), s.fetch().readTimeout());
    assertEquals(2, s.connections());
  }

  @Test
  void defaultsAreSafe() throws Exception {
    NbdSettings s = resolve("", "oci:/x");
    assertNull(s.listen(), "the command picks a unix socket");
    assertEquals(false, s.allowRemote());
    assertEquals(NbdSettings.DEFAULT_CACHE_DIR, s.cacheDir());
    assertEquals(1 << 20, s.fetch().chunkSize());
  }

  @Test
  void unknownKeysAndBadValuesAreErrors() {
    ConfigException e =
        assertThrows(ConfigException.class, () -> resolve("[nbd]\nlisen = \"x\"\n", "oci:/x"));
    assertTrue(e.getMessage().contains("lisen"), e.getMessage());
    assertThrows(ConfigException.class, () -> resolve("", "oci:/x", "--chunk-size", "3000"));
    assertThrows(ConfigException.class, () -> resolve("[nbd]\nthreads = 0\n", "oci:/x"));
  }

  @Test
  void writableFlagsMakeAWritableExportAndNeedEachOther() throws Exception {
    NbdSettings s =
        resolve(
            "[nbd]\noverlays_dir = \"/srv/overlays\"\n",
            "oci:/x",
            "--writable",
            "--block-size",
            "16K");
    var c = s.export(parse("oci:/x", "--writable", "--block-size", "16K"));
    assertEquals(16 << 10, c.writable().blockSize());
    assertNull(c.writable().overlay(), "the default: <overlays_dir>/<name>");
    assertEquals(Path.of("/srv/overlays"), c.writable().overlaysDir());
    var named = s.export(parse("oci:/x", "--writable", "--overlay", "/tmp/ov"));
    assertEquals(Path.of("/tmp/ov"), named.writable().overlay());
    assertEquals(0, named.writable().blockSize(), "the overlay's own, or 4K for a new one");
    assertNull(resolveExport("oci:/x").writable(), "read-only unless --writable");
    assertThrows(ConfigException.class, () -> resolve("", "oci:/x", "--overlay", "/tmp/ov"));
    assertThrows(ConfigException.class, () -> resolve("", "oci:/x", "--block-size", "4K"));
    assertThrows(
        ConfigException.class, () -> resolve("", "oci:/x", "--writable", "--block-size", "3K"));
    assertThrows(
        ConfigException.class, () -> resolve("", "oci:/x", "--writable", "--block-size", "128K"));
  }

  private static NbdCommand parse(String... args) {
    NbdCommand cmd = new NbdCommand();
    new CommandLine(cmd).parseArgs(args);
    return cmd;
  }

  private ExportConfig resolveExport(String... args) throws Exception {
    NbdCommand cmd = parse(args);
    Path f = tmp.resolve("empty.toml");
    Files.writeString(f, "");
    return NbdSettings.resolve(cmd, ConfigFile.load(f, true)).export(cmd);
  }
}

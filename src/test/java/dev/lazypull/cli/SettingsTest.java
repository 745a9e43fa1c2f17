package dev.lazypull.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class SettingsTest {
  @TempDir Path tmp;

  private Settings resolve(String toml, String... args) throws Exception {
    Path f = tmp.resolve("config.toml");
    Files.writeString(f, toml);
    DaemonCommand cmd = new DaemonCommand();
    new CommandLine(cmd).parseArgs(args);
    return Settings.resolve(cmd, ConfigFile.load(f, true));
  }

  @Test
  void fileValuesApplyAndFlagsOverrideThem() throws Exception {
    Settings s =
        resolve(
            """
        # comments are fine
        [daemon]
        cache_dir = "/srv/cache"
        threads = 8
        chunk_size = "256K"
        read_timeout = "5s"
        """,
            "--threads",
            "4");
    assertEquals(Path.of("/srv/cache"), s.daemon().cacheDir());
    assertEquals(4, s.daemon().fetch().threadsPerOrigin());
    assertEquals(256 << 10, s.daemon().fetch().chunkSize());
    assertEquals(Duration.ofSeconds(5), s.daemon().fetch().readTimeout());
    assertEquals(Path.of("/var/lib/lazypull"), s.daemon().stateDir());
  }

  @Test
  void readAheadFromTheFileOrTheFlag() throws Exception {
    assertEquals(64L << 20, resolve("").daemon().fetch().readAhead());
    assertEquals(8L << 20, resolve("[daemon]\nreadahead = \"8M\"\n").daemon().fetch().readAhead());
    assertEquals(
        0,
        resolve("[daemon]\nreadahead = \"8M\"\n", "--readahead", "0").daemon().fetch().readAhead());
  }

  @Test
  void badKeysAndValuesAreRefusedWithTheKeyNamed() {
    ConfigException e =
        assertThrows(ConfigException.class, () -> resolve("[daemon]\ncache_dri = \"/x\"\n"));
    assertTrue(e.getMessage().contains("daemon.cache_dri"), e.getMessage());
    e = assertThrows(ConfigException.class, () -> resolve("[daemon]\nthreads = \"many\"\n"));
    assertTrue(e.getMessage().contains("daemon.threads"), e.getMessage());
    e = assertThrows(ConfigException.class, () -> resolve("[daemon]\nchunk_size = \"3K\"\n"));
    assertTrue(
        e.getMessage().contains("chunk_size") || e.getMessage().contains("chunk size"),
        e.getMessage());
    e = assertThrows(ConfigException.class, () -> resolve("[deamon]\n"));
    assertTrue(e.getMessage().contains("deamon"), e.getMessage());
    e = assertThrows(ConfigException.class, () -> resolve("[daemon\n"));
    assertTrue(e.getMessage().contains("TOML"), e.getMessage());
  }

  @Test
  void anExplicitMissingFileIsAnErrorTheDefaultOneIsNot() throws Exception {
    assertThrows(ConfigException.class, () -> ConfigFile.load(tmp.resolve("nope.toml"), true));
    assertTrue(!ConfigFile.load(tmp.resolve("nope.toml"), false).isPresent());
  }
}

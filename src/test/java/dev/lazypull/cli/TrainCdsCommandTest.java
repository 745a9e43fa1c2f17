package dev.lazypull.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.testing.CliRun;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code lazypull train-cds DIR} (hidden): it works only in a scratch directory of its own (it
 * unmounts {@code DIR/mnt}). A full training run is not made here: it runs commands in this JVM,
 * which set up logging for the whole process; the build's archive step and ReleaseTarballIT run it
 * for real.
 */
class TrainCdsCommandTest {
  @TempDir Path tmp;

  private static List<String> names(Path dir) throws Exception {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void refusesADirectoryThatIsNotEmpty() throws Exception {
    Path dir = Files.createDirectory(tmp.resolve("used"));
    Files.writeString(dir.resolve("keep"), "mine\n");
    CliRun.Result r = CliRun.run("train-cds", dir.toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains(dir + " exists and is not an empty directory"), r.err());
    assertEquals(List.of("keep"), names(dir), "nothing written into it");
  }

  @Test
  void refusesAFile() throws Exception {
    Path file = Files.writeString(tmp.resolve("file"), "mine\n");
    CliRun.Result r = CliRun.run("train-cds", file.toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("not an empty directory"), r.err());
    assertEquals("mine\n", Files.readString(file));
  }
}

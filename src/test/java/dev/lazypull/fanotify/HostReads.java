package dev.lazypull.fanotify;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.lazypull.testing.ErofsMounts;
import dev.lazypull.testing.Requirements;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Reads of a lazy mount by separate processes, each bounded in time: a reader stuck in the kernel
 * (waiting for an answer nobody gives) is SIGKILLed by {@code timeout} and reported as hung, so a
 * test never hangs with it. A reader copies the file ({@code dd}), so what it got before an error
 * can be compared with the source: an I/O error is acceptable, a byte that differs (zeros over a
 * hole) never is.
 */
final class HostReads {
  /** Seconds a reader may take before it counts as hung. */
  static final int READ_LIMIT_SECONDS = 60;

  private HostReads() {}

  /** One reader: {@code timeout -s KILL LIMIT dd if=FILE of=COPY}. */
  record Reader(Process process, Path file, Path source, Path copy, long startNanos) {
    /** The dd process (the timeout's child), once it runs. */
    Optional<ProcessHandle> dd() {
      return process.toHandle().children().findFirst();
    }

    /**
     * Whether dd is blocked in the kernel waiting on a fanotify answer (its kernel stack says so).
     */
    boolean waitsOnFanotify() {
      return dd().map(
              h -> {
                try {
                  return Files.readString(Path.of("/proc/" + h.pid() + "/stack"))
                      .contains("fanotify");
                } catch (IOException e) {
                  return false;
                }
              })
          .orElse(false);
    }
  }

  /** What one reader ended with. */
  record Outcome(Path file, int exit, String stderr, long bytes, long sourceBytes, long millis) {
    boolean complete() {
      return exit == 0;
    }

    boolean ioError() {
      return exit != 0 && stderr.contains("Input/output error");
    }

    @Override
    public String toString() {
      return file.getFileName()
          + ": exit "
          + exit
          + ", "
          + bytes
          + "/"
          + sourceBytes
          + " bytes in "
          + millis
          + " ms"
          + (stderr.isBlank() ? "" : " (" + stderr.strip() + ")");
    }
  }

  static Reader start(Path file, Path source, Path copy) throws IOException {
    Files.deleteIfExists(copy);
    Process p =
        new ProcessBuilder(
                "timeout",
                "-s",
                "KILL",
                Integer.toString(READ_LIMIT_SECONDS),
                "dd",
                "if=" + file,
                "of=" + copy,
                "bs=1M",
                "status=none")
            .redirectErrorStream(true)
            .redirectOutput(Path.of(copy + ".err").toFile())
            .start();
    return new Reader(p, file, source, copy, System.nanoTime());
  }

  /**
   * Waits for the reader and checks it got the right bytes — all of them, or a prefix followed by
   * an I/O error when {@code errorAllowed}. Fails on a hang (killed by its timeout), on any other
   * error, and on wrong bytes.
   */
  static Outcome finish(Reader r, boolean errorAllowed) throws IOException, InterruptedException {
    if (!r.process().waitFor(READ_LIMIT_SECONDS + 15, TimeUnit.SECONDS)) {
      r.process().destroyForcibly();
      fail("reader of " + r.file() + " did not end: its timeout did not fire");
    }
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - r.startNanos());
    String err = Files.readString(Path.of(r.copy() + ".err"), StandardCharsets.UTF_8);
    long got = Files.exists(r.copy()) ? Files.size(r.copy()) : 0;
    Outcome o =
        new Outcome(r.file(), r.process().exitValue(), err, got, Files.size(r.source()), ms);
    if (o.exit() == 137 || o.exit() == 124) {
      fail("reader hung past " + READ_LIMIT_SECONDS + " s: " + o);
    }
    if (got > 0) {
      long mismatch = Files.mismatch(r.copy(), r.source());
      // -1: identical; size of the copy: the copy is a prefix of the source
      assertTrue(
          mismatch == -1 || mismatch == got,
          "WRONG BYTES at offset " + mismatch + " of " + r.file() + " (" + o + ")");
    }
    if (o.complete()) {
      assertTrue(got == o.sourceBytes(), "a read that succeeded got every byte: " + o);
    } else {
      assertTrue(errorAllowed && o.ioError(), "reader failed: " + o);
      assertTrue(got < o.sourceBytes(), "an error before the end: " + o);
    }
    return o;
  }

  /**
   * Reads {@code file} in one bounded process; returns what it ended with (checked as in {@link
   * #finish}).
   */
  static Outcome read(Path file, Path source, Path copy, boolean errorAllowed)
      throws IOException, InterruptedException {
    return finish(start(file, source, copy), errorAllowed);
  }

  /** The canonical listing (metadata and md5 of every entry) of a tree, bounded in time. */
  static String listing(Path dir) throws IOException, InterruptedException {
    return Requirements.run(
        "timeout",
        "-s",
        "KILL",
        "300",
        "bash",
        ErofsMounts.listingScript().toString(),
        dir.toString());
  }

  /**
   * {@code md5sum -c LIST} in {@code dir}, bounded; returns the output (fails on a mismatch or
   * error).
   */
  static String md5Check(Path dir, Path list) throws IOException, InterruptedException {
    return Requirements.run(
        "bash", "-c", "cd '" + dir + "' && timeout -s KILL 300 md5sum --quiet -c '" + list + "'");
  }

  /** {@code echo 3 > /proc/sys/vm/drop_caches}: every clean page of every file is dropped. */
  static void dropCaches() throws IOException, InterruptedException {
    Requirements.run("sync");
    Files.writeString(Path.of("/proc/sys/vm/drop_caches"), "3");
  }

  static List<String> lines(String s) {
    return s.lines().toList();
  }
}

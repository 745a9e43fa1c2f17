package dev.lazypull.testing;

import dev.lazypull.cli.Main;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * Runs the CLI in-process and captures what it prints: stdout (digests, results) and stderr
 * (progress, errors) apart. Echoes both to the test's own output for the report. Not thread-safe
 * (swaps System.out/err).
 */
public final class CliRun {
  public record Result(int code, String out, String err) {
    /** The last non-empty stdout line (commands print their result last). */
    public String lastLine() {
      String[] lines = out.strip().split("\n");
      return lines[lines.length - 1].strip();
    }
  }

  private CliRun() {}

  public static synchronized Result run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream oldOut = System.out;
    PrintStream oldErr = System.err;
    int rc;
    try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
      System.setOut(o);
      System.setErr(e);
      rc = Main.run(args);
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
    Result r =
        new Result(rc, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    System.out.println(
        "$ lazypull " + String.join(" ", args) + "  (exit " + rc + ")\n" + r.out + r.err);
    return r;
  }
}

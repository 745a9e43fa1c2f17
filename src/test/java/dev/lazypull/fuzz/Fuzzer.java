package dev.lazypull.fuzz;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * A small mutational fuzzer for pure decoders, driven from JUnit: seeds are mutated (bit flips,
 * byte sets, interesting integers at aligned offsets, truncation, duplication, splicing) and fed to
 * a target that may only fail with the exception types it documents. Anything else — a
 * RuntimeException escaping, an OutOfMemoryError from an unbounded allocation, a StackOverflowError
 * — fails the test with the input in hex.
 *
 * <p>Time budget per target: {@code -Dfuzz.seconds=N} (default 3 s, so `mvn test` stays quick; the
 * {@code fuzz} profile runs longer). Seeded from {@code -Dfuzz.seed} for reproduction.
 */
public final class Fuzzer {
  /** The code under test. */
  public interface Target {
    void run(byte[] input) throws Exception;
  }

  private static final int[] INTERESTING = {
    0,
    1,
    -1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0x8000,
    0xffff,
    0x7fffffff,
    0x80000000,
    0xfffffff0,
    4096,
    4095,
    1024,
    16,
    32,
    64
  };

  private Fuzzer() {}

  public static Duration budget() {
    return Duration.ofMillis(
        (long) (Double.parseDouble(System.getProperty("fuzz.seconds", "3")) * 1000));
  }

  /**
   * Runs {@code target} on mutations of {@code seeds} for the budget; returns the number of
   * executions.
   *
   * @param allowed exception types the target may throw on bad input (clear errors)
   */
  public static long fuzz(
      String name,
      List<byte[]> seeds,
      Set<Class<? extends Throwable>> allowed,
      int maxLen,
      Target target) {
    long seed = Long.getLong("fuzz.seed", System.nanoTime());
    Random rnd = new Random(seed);
    long end = System.nanoTime() + budget().toNanos();
    long runs = 0;
    List<byte[]> pool = new ArrayList<>(seeds);
    for (byte[] s : seeds) {
      check(name, seed, s, allowed, target);
    }
    while (System.nanoTime() < end) {
      byte[] input = mutate(pool.get(rnd.nextInt(pool.size())), pool, rnd, maxLen);
      check(name, seed, input, allowed, target);
      runs++;
      if (pool.size() < 256 && rnd.nextInt(64) == 0) {
        pool.add(input); // keep some mutants: deeper structure-aware exploration without coverage
        // feedback
      }
    }
    System.out.printf("fuzz %s: %d executions in %s (seed %d)%n", name, runs, budget(), seed);
    return runs;
  }

  private static void check(
      String name,
      long seed,
      byte[] input,
      Set<Class<? extends Throwable>> allowed,
      Target target) {
    try {
      target.run(input);
    } catch (Throwable t) {
      for (Class<? extends Throwable> c : allowed) {
        if (c.isInstance(t)) {
          return;
        }
      }
      AssertionError e =
          new AssertionError(
              "fuzz "
                  + name
                  + " (seed "
                  + seed
                  + "): "
                  + t
                  + " on input "
                  + HexFormat.of()
                      .formatHex(input.length > 512 ? Arrays.copyOf(input, 512) : input),
              t);
      throw e;
    }
  }

  static byte[] mutate(byte[] base, List<byte[]> pool, Random rnd, int maxLen) {
    byte[] b = base.clone();
    int rounds = 1 + rnd.nextInt(4);
    for (int i = 0; i < rounds; i++) {
      if (b.length == 0) {
        b = new byte[] {(byte) rnd.nextInt()};
      }
      switch (rnd.nextInt(8)) {
        case 0 -> b[rnd.nextInt(b.length)] ^= (byte) (1 << rnd.nextInt(8));
        case 1 -> b[rnd.nextInt(b.length)] = (byte) rnd.nextInt();
        case 2 -> { // an interesting 32-bit value at an aligned offset, either byte order
          if (b.length >= 4) {
            int off = rnd.nextInt(b.length / 4) * 4;
            int v = INTERESTING[rnd.nextInt(INTERESTING.length)];
            boolean le = rnd.nextBoolean();
            for (int k = 0; k < 4; k++) {
              b[off + k] = (byte) (le ? v >>> (8 * k) : v >>> (8 * (3 - k)));
            }
          }
        }
        case 3 -> b = Arrays.copyOf(b, rnd.nextInt(b.length + 1)); // truncate
        case 4 -> { // duplicate a slice
          int from = rnd.nextInt(b.length);
          int len = Math.min(rnd.nextInt(64) + 1, b.length - from);
          byte[] out = Arrays.copyOf(b, Math.min(maxLen, b.length + len));
          System.arraycopy(b, from, out, b.length, out.length - b.length);
          b = out;
        }
        case 5 -> { // splice with another input
          byte[] other = pool.get(rnd.nextInt(pool.size()));
          int cut = rnd.nextInt(b.length);
          byte[] out = Arrays.copyOf(b, Math.min(maxLen, cut + other.length));
          System.arraycopy(other, 0, out, cut, out.length - cut);
          b = out;
        }
        case 6 -> { // a run of one byte value
          int off = rnd.nextInt(b.length);
          Arrays.fill(b, off, Math.min(b.length, off + rnd.nextInt(16) + 1), (byte) rnd.nextInt());
        }
        default -> { // ASCII digit/quote noise (helps JSON targets)
          String noise = "0123456789\"{}[],:-e.";
          b[rnd.nextInt(b.length)] = (byte) noise.charAt(rnd.nextInt(noise.length()));
        }
      }
    }
    return b.length > maxLen ? Arrays.copyOf(b, maxLen) : b;
  }
}

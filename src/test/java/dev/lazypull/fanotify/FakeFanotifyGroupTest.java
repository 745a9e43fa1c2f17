package dev.lazypull.fanotify;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fake group drives an event loop the way the kernel would; the same loop runs on the host
 * kernel.
 */
class FakeFanotifyGroupTest {
  @TempDir Path tmp;

  @Test
  void anEventLoopFillsRangesAndAnswersEachEventOnce() throws Exception {
    byte[] content = new byte[300_000];
    new Random(7).nextBytes(content);
    Path source = Files.write(tmp.resolve("blob"), content);
    Path cache = tmp.resolve("cache");
    try (var f = new RandomAccessFile(cache.toFile(), "rw")) {
      f.setLength(content.length);
    }
    FakeFanotifyGroup group = new FakeFanotifyGroup();
    group.mark(cache);
    RangeFiller loop = new RangeFiller(group, source, true, FanotifyResponse.ALLOW);
    Thread t = new Thread(loop, "filler");
    t.start();
    try {
      CompletableFuture<?>[] answers = new CompletableFuture<?>[40];
      for (int i = 0; i < answers.length; i++) {
        answers[i] = group.access(cache, i * 8192L, 8192, 100 + i);
      }
      answers[answers.length - 1] = group.access(cache, 294_912, 8192, 1); // reaches past the end
      for (CompletableFuture<?> a : answers) {
        assertEquals(FanotifyResponse.ALLOW, a.get(30, TimeUnit.SECONDS));
      }
      group.inject(EventBytes.metadata(24, 9, 24, EventBytes.FAN_PRE_ACCESS, 77, 1), 77, cache);
      group.inject(
          new EventBytes()
              .event(EventBytes.FAN_PRE_ACCESS, 78, 1, EventBytes.record(4, 0, 8))
              .bytes(),
          78,
          cache);
      CompletableFuture<Integer> after = group.access(cache, 0, 4096, 1);
      assertEquals(FanotifyResponse.ALLOW, after.get(30, TimeUnit.SECONDS));
    } finally {
      loop.stop();
      t.join(10_000);
      group.close();
    }
    byte[] filled = Files.readAllBytes(cache);
    assertEquals(content.length, filled.length, "a range past the end must not grow the file");
    assertArrayEquals(Arrays.copyOf(content, 40 * 8192), Arrays.copyOf(filled, 40 * 8192));
    assertEquals(
        2, loop.problems.size(), "the two malformed events, nothing else: " + loop.problems);
    assertTrue(
        loop.problems.get(0).contains("version 9") && loop.problems.get(1).contains("length 0"),
        loop.problems.toString());
    assertTrue(group.violations().isEmpty(), group.violations().toString());
    assertEquals(
        Set.of(77),
        group.openFds(),
        "only the fd of the unknown-version event stays open: its fd field cannot be read");
    assertTrue(
        !group.openFds().contains(78), "the malformed record's event was answered and closed");
    assertEquals(42, loop.events.get());
  }

  @Test
  void closingTheGroupAllowsWhatIsPendingLikeTheKernel() throws Exception {
    FakeFanotifyGroup group = new FakeFanotifyGroup();
    Path cache = Files.write(tmp.resolve("c"), new byte[10]);
    group.mark(cache);
    CompletableFuture<Integer> pending = group.access(cache, 0, 4096, 1);
    group.close();
    assertEquals(FanotifyResponse.ALLOW, pending.get(1, TimeUnit.SECONDS));
  }
}

package dev.lazypull.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.fanotify.EventBytes;
import dev.lazypull.fanotify.FanotifyDecoder;
import dev.lazypull.fanotify.FanotifyMessage;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Fuzzes the fanotify event decoder: bytes the kernel hands us must never throw, loop or lose an
 * fd.
 */
class FanotifyDecoderFuzzTest {
  @Test
  void fanotifyEventsNeverThrowNorLoseTheFirstFd() {
    List<byte[]> seeds =
        List.of(
            new EventBytes().preAccess(5, 100, 4096, 65536).bytes(),
            new EventBytes()
                .preAccess(5, 1, 0, 4096)
                .preAccess(6, 1, 4096, 4096)
                .event(0x4000, -1, 0)
                .bytes(),
            new EventBytes()
                .event(
                    EventBytes.FAN_PRE_ACCESS,
                    7,
                    2,
                    EventBytes.record(4, 8, 8),
                    EventBytes.record(99, 12, 12),
                    EventBytes.range(1L << 33, 262144))
                .bytes(),
            new EventBytes().event(0x20000, 9, 3).bytes());
    long runs =
        Fuzzer.fuzz(
            "fanotify",
            seeds,
            Set.of(),
            FanotifyDecoder.READ_BUFFER_SIZE,
            input -> {
              List<FanotifyMessage> m =
                  FanotifyDecoder.decode(ByteBuffer.wrap(input), input.length);
              assertEquals(input.length == 0, m.isEmpty());
              assertTrue(
                  m.size() <= input.length / FanotifyDecoder.METADATA_LEN + 1,
                  "one item per event at most");
              ByteBuffer b = ByteBuffer.wrap(input).order(ByteOrder.nativeOrder());
              if (input.length >= 20 && input[4] == FanotifyDecoder.VERSION) {
                assertEquals(b.getInt(16), m.get(0).fd(), "a version-3 event's fd is never lost");
              }
              for (FanotifyMessage x : m) {
                if (x instanceof FanotifyMessage.Event e) {
                  assertTrue(e.offset() >= 0 && e.count() >= 0 && e.end() >= e.offset());
                  assertTrue(e.hasRange() || (e.offset() == 0 && e.count() == 0));
                }
              }
            });
    assertTrue(runs > 1000);
  }
}

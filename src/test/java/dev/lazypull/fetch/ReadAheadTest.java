package dev.lazypull.fetch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ReadAheadTest {
  private static final int C = 1 << 20;

  @Test
  void sequentialReadsOpenAWindowThatGrowsWithTheRunAndNeverReissues() {
    ChunkMap map = new ChunkMap(1000L * C, C);
    ReadAhead ra = new ReadAhead(map, 16L * C);
    assertNull(ra.onRead(0, 128 << 10), "one READ is not a pattern yet");
    assertEquals(new ReadAhead.Range(2L * C, C), ra.onRead(C, 128 << 10));
    long issuedEnd = 3L * C;
    long maxWindow = 0;
    // a reader going through the blob one chunk after another (READs arrive only for chunks not yet
    // present)
    for (int c = 2; c < 400; c++) {
      ReadAhead.Range r = ra.onRead((long) c * C, 4096);
      if (r != null) {
        assertEquals(
            issuedEnd, r.offset(), "contiguous with what was issued before: nothing asked twice");
        issuedEnd = r.offset() + r.length();
      }
      long read = (long) (c + 1) * C;
      assertTrue(
          issuedEnd <= read + Math.max(C, read / 10) + C,
          "overshoot at chunk " + c + ": " + issuedEnd);
      maxWindow = Math.max(maxWindow, ra.windowBytes());
    }
    assertEquals(16L * C, maxWindow, "the window reaches its maximum on a long run");
  }

  @Test
  void aReaderSkippingChunksReadAheadAlreadyFetchedIsStillSequential() {
    ChunkMap map = new ChunkMap(1000L * C, C);
    ReadAhead ra = new ReadAhead(map, 64L * C);
    ReadAhead.Range r = null;
    int c = 0;
    long issuedEnd = 0;
    for (int i = 0; i < 200; i++) {
      r = ra.onRead((long) c * C, 4096);
      if (r != null) {
        issuedEnd = r.offset() + r.length();
      }
      // the kernel sends the next READ at the first chunk read-ahead has not covered (it finds the
      // rest present)
      c = Math.max(c + 1, (int) (issuedEnd / C));
    }
    assertTrue(ra.windowBytes() > 8L * C, "the run was never reset: window " + ra.windowBytes());
  }

  @Test
  void aJumpResetsTheRunAndTheBlobEndBoundsTheWindow() {
    ChunkMap map = new ChunkMap(60L * C + 5, C);
    ReadAhead ra = new ReadAhead(map, 8L * C);
    for (int c = 0; c < 40; c++) {
      ra.onRead((long) c * C, 4096);
    }
    assertEquals(4L * C, ra.windowBytes());
    assertNull(ra.onRead(5L * C, 4096), "random access: no read-ahead");
    assertEquals(0, ra.windowBytes());
    assertEquals(new ReadAhead.Range(7L * C, C), ra.onRead(6L * C, 4096), "a new run starts small");
    for (int c = 7; c < 59; c++) {
      ra.onRead((long) c * C, 4096);
    }
    ReadAhead.Range last = ra.onRead(59L * C, 4096);
    assertTrue(last == null || last.offset() + last.length() <= map.paddedSize());
    assertNull(ra.onRead(60L * C, 4096), "nothing past the end");
  }

  @Test
  void disabledWithAZeroWindowAndIgnoresNonsense() {
    ChunkMap map = new ChunkMap(10L * C, C);
    ReadAhead off = new ReadAhead(map, 0);
    off.onRead(0, 4096);
    assertNull(off.onRead(C, 4096));
    ReadAhead ra = new ReadAhead(map, 4L * C);
    assertNull(ra.onRead(-1, 10));
    assertNull(ra.onRead(20L * C, 10));
    assertNull(ra.onRead(0, 0));
  }
}

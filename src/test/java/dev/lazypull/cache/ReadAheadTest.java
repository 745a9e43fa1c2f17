package dev.lazypull.cache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

class ReadAheadTest {
  private static final int C = 1 << 20;

  @Test
  void sequentialReadsOpenAGrowingWindowThatIsNeverReissued() {
    ChunkMap map = new ChunkMap(100L * C, C);
    ReadAhead ra = new ReadAhead(map, 16L * C);
    assertNull(ra.onRead(0, 128 << 10), "one READ is not a pattern yet");
    assertEquals(new ReadAhead.Range(2L * C, 4L * C), ra.onRead(C, 128 << 10));
    // the reader reaches chunk 2 (already being fetched): the window doubles past what was issued
    assertEquals(new ReadAhead.Range(6L * C, 5L * C), ra.onRead(2L * C, 128 << 10));
    assertEquals(new ReadAhead.Range(11L * C, 9L * C), ra.onRead(3L * C, 128 << 10));
    // READs inside the issued window keep it going without asking again for the same chunks
    assertEquals(new ReadAhead.Range(20L * C, 2L * C), ra.onRead(5L * C, 4096));
    assertNull(ra.onRead(5L * C + 4096, 4096), "nothing new to ask for");
  }

  @Test
  void aJumpResetsTheWindowAndTheBlobEndBoundsIt() {
    ChunkMap map = new ChunkMap(10L * C + 5, C);
    ReadAhead ra = new ReadAhead(map, 8L * C);
    ra.onRead(0, 4096);
    ra.onRead(C, 4096);
    assertNull(ra.onRead(7L * C, 4096), "random access: no read-ahead");
    ReadAhead.Range r = ra.onRead(8L * C, 4096);
    assertEquals(9L * C, r.offset());
    assertEquals(map.paddedSize() - 9L * C, r.length(), "clamped to the last chunk");
    assertNull(ra.onRead(10L * C, 4096));
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

package dev.lazypull.fetch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

class ChunkMapTest {
  /** A backing file described by its data extents [start, end). */
  static ChunkMap.ExtentProbe extents(long fileSize, long... bounds) {
    TreeMap<Long, Long> data = new TreeMap<>();
    for (int i = 0; i < bounds.length; i += 2) {
      data.put(bounds[i], bounds[i + 1]);
    }
    return new ChunkMap.ExtentProbe() {
      @Override
      public long seekData(long offset) {
        for (var e : data.entrySet()) {
          if (e.getValue() > offset) {
            return Math.max(e.getKey(), offset);
          }
        }
        return -1;
      }

      @Override
      public long seekHole(long offset) {
        for (var e : data.entrySet()) {
          if (e.getKey() <= offset && offset < e.getValue()) {
            return e.getValue();
          }
        }
        return offset < fileSize ? offset : -1;
      }
    };
  }

  @Test
  void geometryPadsTheLastChunkToABlock() {
    ChunkMap m = new ChunkMap(10_000, 4096);
    assertEquals(3, m.chunkCount());
    assertEquals(12288, m.paddedSize());
    assertEquals(10_000, m.chunkDataEnd(2));
    assertEquals(12288, m.chunkFileEnd(2));
    assertEquals(0, new ChunkMap(0, 4096).chunkCount());
    assertThrows(IllegalArgumentException.class, () -> new ChunkMap(1, 3000));
    assertThrows(IllegalArgumentException.class, () -> new ChunkMap(1, 2048));
  }

  @Test
  void readyBytesCountsTheShortLastChunk() {
    ChunkMap m = new ChunkMap(10_000, 4096);
    m.markReady(2);
    assertEquals(10_000 - 8192, m.readyBytes());
    m.markReady(0);
    m.markReady(1);
    assertEquals(10_000, m.readyBytes());
    assertTrue(m.allReady());
    assertEquals(-1, m.nextMissing(0));
  }

  @Test
  void rebuildMarksOnlyFullyCoveredChunks() throws IOException {
    ChunkMap m = new ChunkMap(5 << 20, 1 << 20);
    // data: all of chunk 0, half of chunk 2, chunks 3-4 fully (file padded end)
    m.rebuild(
        extents(5 << 20, 0, 1 << 20, (2 << 20) + 4096, (2 << 20) + (512 << 10), 3 << 20, 5 << 20));
    assertTrue(m.isReady(0));
    assertFalse(m.isReady(1));
    assertFalse(m.isReady(2));
    assertTrue(m.isReady(3));
    assertTrue(m.isReady(4));
    assertEquals(1, m.nextMissing(0));
    assertEquals(3 << 20, m.readyBytes());
  }

  @Test
  void rebuildCountsTheLastChunkUpToThePaddedEnd() throws IOException {
    ChunkMap m = new ChunkMap(3 * 4096 + 100, 4096);
    m.rebuild(extents(4 * 4096, 3 * 4096, 4 * 4096));
    assertTrue(m.isReady(3));
    assertFalse(m.isReady(2));
  }

  @Test
  void rebuildRejectsAProbeThatDoesNotAdvance() {
    ChunkMap m = new ChunkMap(1 << 20, 4096);
    ChunkMap.ExtentProbe stuck =
        new ChunkMap.ExtentProbe() {
          @Override
          public long seekData(long offset) {
            return 0;
          }

          @Override
          public long seekHole(long offset) {
            return 0;
          }
        };
    assertThrows(IOException.class, () -> m.rebuild(stuck));
  }
}

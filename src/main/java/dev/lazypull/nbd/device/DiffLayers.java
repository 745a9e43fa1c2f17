package dev.lazypull.nbd.device;

import dev.lazypull.image.BlockMap;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.roaringbitmap.RoaringBitmap;

/**
 * Lays snapshot diffs over a disk as one {@link SegmentDevice}: a block reads as the last diff that
 * holds it (its packed data: block b of a diff is at (rank(b) − 1) × block size of the diff's data)
 * or zeroes it (a gap), else as the disk's own bytes (its non-zero chunks), else zeros. The
 * resolution is done once, here: every block has one source, so reads never search the chain.
 */
final class DiffLayers {
  /** One diff: its map, and its data (null when it holds no blocks). */
  record Layer(BlockMap map, SegmentDevice.Backing data) {}

  private DiffLayers() {}

  /**
   * @param baseData the disk's non-zero byte ranges, sorted, each {@code [start, end)}
   * @param diffs oldest first, all of one block size
   */
  static SegmentDevice compose(
      long size, SegmentDevice.Backing base, List<long[]> baseData, List<Layer> diffs) {
    List<SegmentDevice.Segment> segments = new ArrayList<>();
    RoaringBitmap covered = new RoaringBitmap();
    int bs = diffs.isEmpty() ? 4096 : diffs.get(0).map().blockSize();
    for (int k = diffs.size() - 1;
        k >= 0;
        k--) { // the newest diff first: what it covers, older layers do not
      Layer l = diffs.get(k);
      if (l.map().blockSize() != bs) {
        throw new IllegalArgumentException(
            "diffs of blocks of " + bs + " and " + l.map().blockSize() + " bytes");
      }
      RoaringBitmap data = l.map().data();
      RoaringBitmap visible = RoaringBitmap.andNot(data, covered);
      for (long v = visible.nextValue(0); v >= 0; ) {
        long end = visible.nextAbsentValue((int) v);
        long start = v * bs;
        long stop = Math.min(end * bs, size);
        long packed = (data.rankLong((int) v) - 1) * bs;
        segments.add(new SegmentDevice.Segment(start, stop - start, l.data(), packed));
        v = end > Integer.MAX_VALUE ? -1 : visible.nextValue((int) end);
      }
      covered.or(data);
      covered.or(l.map().zero());
    }
    for (long[] r : baseData) {
      long p = r[0];
      while (p < r[1]) {
        int blk = (int) (p / bs);
        if (covered.contains(blk)) {
          p = Math.min(r[1], covered.nextAbsentValue(blk) * bs);
          continue;
        }
        long next = covered.nextValue(blk);
        long e = next < 0 ? r[1] : Math.min(r[1], next * bs);
        segments.add(new SegmentDevice.Segment(p, e - p, base, p));
        p = e;
      }
    }
    segments.sort(Comparator.comparingLong(SegmentDevice.Segment::start));
    return new SegmentDevice(size, segments);
  }
}

package dev.lazypull.nbd.device;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.erofs.BootstrapHeader;
import dev.lazypull.erofs.ErofsFormatException;
import dev.lazypull.erofs.FlatLayout;
import dev.lazypull.erofs.Superblock;
import dev.lazypull.fetch.BlobCacheDir;
import dev.lazypull.fetch.BlobCacheFile;
import dev.lazypull.fetch.BlobRef;
import dev.lazypull.image.BlockMap;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.DiskImage;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.LazyImage;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Builds the devices an image is exported as, over blob cache files (data blobs verified against
 * their chunk digest tables when the image has them):
 *
 * <ul>
 *   <li><b>flattened</b>: the bootstrap at block 0, data blob k at its {@code mapped_blkaddr},
 *       zeros elsewhere (Linux ≥ 6.4 mounts it with {@code mount -t erofs /dev/nbdX}). When the
 *       slots carry no usable mapping the layout is computed, and the bootstrap's head is served
 *       patched so the kernel finds the blobs there.
 *   <li><b>raw</b>: one blob's bytes as the whole device (e.g. a microVM disk image).
 * </ul>
 */
public final class ImageDevices {
  private ImageDevices() {}

  /**
   * @param layout the flattened layout, or null for a raw export
   * @param description one line for clients ({@code NBD_INFO_DESCRIPTION}) and logs
   */
  public record Built(SegmentDevice device, FlatLayout layout, String description) {}

  /**
   * The flattened device of {@code image}; reads the bootstrap's head through the cache (blocking).
   */
  public static Built flattened(
      LazyImage image, BlobSource source, BlobCacheDir cache, Duration timeout) throws IOException {
    Descriptor bootDesc = image.bootstrap();
    BlobCacheFile boot = cache.file(BlobRef.metadata(bootDesc, image.reference()), source);
    byte[] head;
    BootstrapHeader header;
    try {
      if (ChunkDigestTable.whole(bootDesc)
          != null) { // fetched and checked as one unit: all of it now
        awaitCached(boot, 0, boot.size(), timeout);
      }
      head =
          readCached(
              boot,
              0,
              (int) Math.min(Superblock.OFFSET + Superblock.SIZE, bootDesc.size()),
              timeout);
      Superblock sb = Superblock.decode(ByteBuffer.wrap(head));
      long needed = BootstrapHeader.bytesNeeded(sb);
      if (needed > bootDesc.size()) {
        throw new ErofsFormatException(
            "its head (superblock, device table) ends at "
                + needed
                + ", past the bootstrap's "
                + bootDesc.size()
                + " bytes");
      }
      head = readCached(boot, 0, (int) needed, timeout);
      header = BootstrapHeader.decode(ByteBuffer.wrap(head));
      if (sb.blockSize() != FlatLayout.BLOCK_SIZE) {
        throw new ErofsFormatException(
            "block size " + sb.blockSize() + "; a flattened device needs " + FlatLayout.BLOCK_SIZE);
      }
    } catch (ErofsFormatException e) {
      throw new InvalidImageException(
          image.reference() + ": bootstrap " + bootDesc.digest() + ": " + e.getMessage());
    }
    List<BlobCacheFile> blobs = new ArrayList<>();
    List<Long> sizes = new ArrayList<>();
    for (int i = 0; i < image.blobs().size(); i++) {
      Descriptor d = image.blobs().get(i);
      // verified fetches when the image has tables
      blobs.add(cache.file(BlobRef.data(d, image.chunkTable(i), image.reference()), source));
      sizes.add(
          LazyImage.deviceSize(d)); // the device a compressed blob holds is larger than the blob
    }
    FlatLayout layout;
    byte[] overlay = null;
    try {
      layout = FlatLayout.of(header, bootDesc.size(), sizes);
      if (layout.computed() && !image.blobs().isEmpty()) {
        overlay = layout.patchHead(head);
      }
    } catch (ErofsFormatException e) {
      throw new InvalidImageException(image.reference() + ": " + e.getMessage());
    }
    List<SegmentDevice.Segment> segments = new ArrayList<>();
    long headEnd = 0;
    if (overlay != null) {
      segments.add(new SegmentDevice.Segment(0, overlay.length, SegmentDevice.bytes(overlay), 0));
      headEnd = overlay.length;
    }
    if (boot.size() > headEnd) {
      segments.add(
          new SegmentDevice.Segment(
              headEnd, boot.size() - headEnd, SegmentDevice.file(boot), headEnd));
    }
    List<FlatLayout.Extent> extents = new ArrayList<>(layout.blobs());
    extents.sort((a, b) -> Long.compare(a.startBlock(), b.startBlock()));
    for (FlatLayout.Extent e : extents) {
      BlobCacheFile f = blobs.get(e.index());
      // The cache file is the blob zero-padded to a block; any further blocks the slot claims read
      // as zeros.
      segments.add(new SegmentDevice.Segment(e.startByte(), f.size(), SegmentDevice.file(f), 0));
    }
    SegmentDevice device = new SegmentDevice(layout.deviceSize(), segments);
    String description =
        String.format(
            Locale.ROOT,
            "lazypull flattened EROFS device of %s (%s, %d blob%s, %s " + "layout)",
            image.reference(),
            image.manifestDigest().shortHex(),
            image.blobs().size(),
            image.blobs().size() == 1 ? "" : "s",
            layout.computed() ? "computed" : "image's own");
    return new Built(device, layout, description);
  }

  /** One blob of {@code image} as the whole device. */
  public static Built raw(
      LazyImage image, String blobSelector, BlobSource source, BlobCacheDir cache)
      throws IOException {
    Descriptor blob = selectBlob(image, blobSelector);
    BlobCacheFile f = cache.file(refOf(image, blob), source);
    long size = f.ref().deviceSize();
    SegmentDevice device =
        new SegmentDevice(
            size, List.of(new SegmentDevice.Segment(0, size, SegmentDevice.file(f), 0)));
    return new Built(
        device, null, "lazypull raw blob " + blob.digest() + " of " + image.reference());
  }

  /**
   * The device of a disk image: the disk (its all-zero chunks, known from the digest table, are
   * zero runs never fetched) with every snapshot diff laid over it — a block reads as the last diff
   * that holds or zeroes it. Each layer is fetched lazily and verified; the diffs' block maps are
   * read whole and checked against their digests first.
   */
  public static Built disk(DiskImage image, BlobSource source, BlobCacheDir cache, Duration timeout)
      throws IOException {
    BlobCacheFile base =
        cache.file(BlobRef.data(image.disk(), image.diskTable(), image.reference()), source);
    ChunkDigestTable table = await(base.fetcher(), timeout, image.disk()).table();
    List<long[]> baseData = nonZeroRanges(table, image.size());
    List<DiffLayers.Layer> diffs = new ArrayList<>();
    for (DiskImage.Diff d : image.diffs()) {
      BlockMap map;
      try {
        map = BlockMap.decode(source.readVerified(d.map(), BlockMap.MAX_BYTES, "diff block map"));
      } catch (InvalidImageException e) {
        throw e;
      } catch (IOException e) {
        throw new IOException(
            image.reference() + ": diff block map " + d.map().digest() + ": " + e.getMessage(), e);
      }
      if (map.blockSize() != d.blockSize()
          || map.data().getLongCardinality() != d.blocks()
          || map.size() != image.size()) {
        throw new InvalidImageException(
            image.reference()
                + ": diff block map "
                + d.map().digest()
                + " ("
                + map.data().getLongCardinality()
                + " blocks of "
                + map.blockSize()
                + " over "
                + map.size()
                + " bytes) does not match its layer ("
                + d.blocks()
                + " blocks of "
                + d.blockSize()
                + ") or the disk ("
                + image.size()
                + " bytes)");
      }
      BlobCacheFile data =
          d.data() == null
              ? null
              : cache.file(BlobRef.data(d.data(), d.table(), image.reference()), source);
      diffs.add(new DiffLayers.Layer(map, data == null ? null : SegmentDevice.file(data)));
    }
    SegmentDevice device =
        DiffLayers.compose(image.size(), SegmentDevice.file(base), baseData, diffs);
    String description =
        "lazypull disk "
            + image.manifestDigest().shortHex()
            + " of "
            + image.reference()
            + (diffs.isEmpty()
                ? ""
                : " (" + diffs.size() + " diff" + (diffs.size() == 1 ? "" : "s") + ")");
    return new Built(device, null, description);
  }

  /**
   * The [start, end) ranges of a disk's chunks that are not all zero (merged where adjacent): the
   * only ones ever fetched — an all-zero chunk reads as zeros from its hole.
   */
  public static List<long[]> nonZeroRanges(ChunkDigestTable table, long diskSize) {
    List<long[]> ranges = new ArrayList<>();
    for (int i = 0; i < table.size(); i++) {
      if (isZeroChunk(table, i)) {
        continue;
      }
      long a = table.offset(i);
      long z = Math.min(a + table.length(i), diskSize);
      if (a >= z) {
        continue;
      }
      if (!ranges.isEmpty() && ranges.get(ranges.size() - 1)[1] == a) {
        ranges.get(ranges.size() - 1)[1] = z;
      } else {
        ranges.add(new long[] {a, z});
      }
    }
    return ranges;
  }

  /**
   * Whether entry {@code i} of {@code table} is all zeros: its digest is that of as many zero
   * bytes.
   */
  static boolean isZeroChunk(ChunkDigestTable table, int i) {
    return Arrays.equals(table.sha256(i), zeroDigest(table.length(i)));
  }

  private static final Map<Integer, byte[]> ZERO_DIGESTS = new ConcurrentHashMap<>();

  private static byte[] zeroDigest(int length) {
    return ZERO_DIGESTS.computeIfAbsent(
        length,
        n -> {
          MessageDigest md = Digest.sha256();
          byte[] zeros = new byte[Math.min(n, 1 << 20)];
          for (int left = n; left > 0; left -= zeros.length) {
            md.update(zeros, 0, Math.min(left, zeros.length));
          }
          return md.digest();
        });
  }

  private static <T> T await(CompletableFuture<T> f, Duration timeout, Descriptor what)
      throws IOException {
    try {
      return f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      throw c instanceof IOException io ? io : new IOException(String.valueOf(c.getMessage()), c);
    } catch (TimeoutException e) {
      throw new IOException(
          "loading the chunk digest table of " + what.digest() + " took longer than " + timeout);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while loading " + what.digest());
    }
  }

  /**
   * How the fetch core serves one layer of {@code image}: its bootstrap as metadata (checked
   * whole), a data blob with its chunk digest table when the image has tables, anything else
   * unverified.
   */
  public static BlobRef refOf(LazyImage image, Descriptor blob) {
    if (blob.equals(image.bootstrap())) {
      return BlobRef.metadata(blob, image.reference());
    }
    int i = image.blobs().indexOf(blob);
    return BlobRef.data(blob, i < 0 ? null : image.chunkTable(i), image.reference());
  }

  /**
   * The layer named by {@code selector}: a full digest ({@code sha256:<hex>}), its hex, or a unique
   * hex prefix of at least 8 characters.
   */
  public static Descriptor selectBlob(LazyImage image, String selector) throws IOException {
    String want = selector.startsWith("sha256:") ? selector.substring(7) : selector;
    want = want.toLowerCase(Locale.ROOT);
    if (want.length() < 8 || want.length() > 64 || !want.matches("[0-9a-f]+")) {
      throw new IOException(
          "--blob wants a sha256 digest or at least 8 of its hex digits, not '" + selector + "'");
    }
    Descriptor found = null;
    for (Descriptor d : image.allBlobs()) {
      if (d.digest().hex().startsWith(want)) {
        if (found != null && !found.digest().equals(d.digest())) {
          throw new IOException(
              "--blob " + selector + " matches more than one layer of " + image.reference());
        }
        found = d;
      }
    }
    if (found == null) {
      throw new IOException(image.reference() + " has no layer " + selector);
    }
    return found;
  }

  /** Fetches (if needed) and reads {@code [offset, offset+length)} of a cache file. */
  static byte[] readCached(BlobCacheFile f, long offset, int length, Duration timeout)
      throws IOException {
    awaitCached(f, offset, length, timeout);
    ByteBuffer buf = ByteBuffer.allocateDirect(length);
    f.read(buf, offset);
    byte[] out = new byte[length];
    buf.flip().get(out);
    return out;
  }

  /**
   * Fetches {@code [offset, offset+length)} into the cache file, waiting at most {@code timeout}.
   */
  private static void awaitCached(BlobCacheFile f, long offset, long length, Duration timeout)
      throws IOException {
    try {
      f.ensure(offset, length).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      throw c instanceof IOException io ? io : new IOException(String.valueOf(c.getMessage()), c);
    } catch (TimeoutException e) {
      throw new IOException(
          "fetching "
              + f.ref().blob().digest()
              + " "
              + offset
              + "+"
              + length
              + " took longer than "
              + timeout);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while fetching " + f.ref().blob().digest());
    }
  }
}

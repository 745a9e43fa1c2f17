package dev.lazypull.image;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A disk image: an OCI manifest whose layer 0 is a raw disk (any block device's bytes), with its
 * chunk digest table, optionally followed by snapshot diffs — each a block map and, when it holds
 * any blocks, their data (packed, compressed chunks) with its table. The device is the disk with
 * every diff laid over it in order: a block reads as the last diff that holds or zeroes it, else as
 * the disk.
 *
 * <pre>
 *   layer 0      disk           DISK or DISK_ZSTD        annotated: chunk-digests, uncompressed-size (zstd)
 *   layer 1      disk's table   CHUNK_DIGESTS            annotated: chunk-digests.blob
 *   per diff     map            DISK_DIFF_MAP            annotated: disk.diff.blocks (data blocks), block size
 *                data           DISK_DIFF_ZSTD           (when blocks > 0) annotated: chunk-digests, uncompressed-size
 *                data's table   CHUNK_DIGESTS            (when blocks > 0) annotated: chunk-digests.blob
 * </pre>
 *
 * The manifest's {@code dev.lazypull.disk.size} annotation is the device size (at most the disk
 * layer's device size, which is padded to 4 KiB); a snapshot's {@code dev.lazypull.disk.parent}
 * names the manifest it was taken over.
 *
 * @param size the device size in bytes
 * @param diffs the snapshot diffs, oldest first
 */
public record DiskImage(
    String reference,
    Digest manifestDigest,
    Manifest manifest,
    Descriptor disk,
    Descriptor diskTable,
    long size,
    List<Diff> diffs) {
  public static final String ANNOTATION_SIZE = "dev.lazypull.disk.size";
  public static final String ANNOTATION_PARENT = "dev.lazypull.disk.parent";
  public static final String ANNOTATION_DIFF_BLOCKS = "dev.lazypull.disk.diff.blocks";
  public static final String ANNOTATION_BLOCK_SIZE = "dev.lazypull.disk.block-size";

  /** Diffs one image may chain; squash longer chains. */
  public static final int MAX_DIFFS = 256;

  /**
   * One snapshot diff.
   *
   * @param data its packed blocks, or null when it holds none (only zeroes)
   * @param table the data's chunk digest table, or null with it
   */
  public record Diff(
      Descriptor map, Descriptor data, Descriptor table, int blockSize, long blocks) {}

  public DiskImage {
    diffs = List.copyOf(diffs);
  }

  /** Whether {@code manifest} is a disk image's (its layer 0 is a disk). */
  public static boolean isDisk(Manifest manifest) {
    return !manifest.layers().isEmpty() && MediaTypes.isDisk(manifest.layers().get(0).mediaType());
  }

  /** The manifest this snapshot was taken over, or null for an imported disk. */
  public String parent() {
    return manifest.annotations().get(ANNOTATION_PARENT);
  }

  /** Checks that {@code manifest} has the disk image layout and returns it. */
  public static DiskImage of(String reference, Digest manifestDigest, Manifest manifest)
      throws InvalidImageException {
    String what = reference + ": disk image " + manifestDigest;
    List<Descriptor> layers = manifest.layers();
    if (!isDisk(manifest) || layers.size() < 2) {
      throw new InvalidImageException(
          what + ": expected a disk layer and its chunk digest table first");
    }
    for (int i = 0; i < layers.size(); i++) {
      Descriptor d = layers.get(i);
      long max =
          MediaTypes.CHUNK_DIGESTS.equals(d.mediaType())
              ? LazyImage.MAX_TABLE_SIZE
              : MediaTypes.DISK_DIFF_MAP.equals(d.mediaType())
                  ? BlockMap.MAX_BYTES
                  : LazyImage.MAX_BLOB_SIZE;
      if (d.size() <= 0 || d.size() > max) {
        throw new InvalidImageException(
            what
                + ": layer "
                + i
                + " ("
                + d.digest()
                + ") has size "
                + d.size()
                + ", outside (0, "
                + max
                + "]");
      }
    }
    Descriptor disk = layers.get(0);
    Descriptor diskTable = table(what, layers, 1, disk);
    long padded = deviceSize(what, 0, disk);
    long size = padded;
    String s = manifest.annotations().get(ANNOTATION_SIZE);
    if (s != null) {
      try {
        size = Long.parseLong(s);
      } catch (NumberFormatException e) {
        size = -1;
      }
      if (size <= 0 || size > padded) {
        throw new InvalidImageException(
            what + ": " + ANNOTATION_SIZE + " '" + s + "' outside (0, " + padded + "]");
      }
    }
    List<Diff> diffs = new ArrayList<>();
    int blockSize = 0;
    for (int i = 2; i < layers.size(); ) {
      Descriptor map = layers.get(i);
      if (!MediaTypes.DISK_DIFF_MAP.equals(map.mediaType())) {
        throw new InvalidImageException(
            what
                + ": layer "
                + i
                + " is "
                + map.mediaType()
                + ", expected "
                + MediaTypes.DISK_DIFF_MAP);
      }
      long blocks;
      int bs;
      try {
        blocks = Long.parseLong(String.valueOf(map.annotation(ANNOTATION_DIFF_BLOCKS)));
        bs = Integer.parseInt(String.valueOf(map.annotation(ANNOTATION_BLOCK_SIZE)));
      } catch (NumberFormatException e) {
        throw new InvalidImageException(
            what
                + ": diff map "
                + map.digest()
                + " lacks "
                + ANNOTATION_DIFF_BLOCKS
                + " or "
                + ANNOTATION_BLOCK_SIZE);
      }
      if (blocks < 0
          || bs < 512
          || bs > (64 << 10)
          || Integer.bitCount(bs) != 1
          || blocks * bs > padded) {
        throw new InvalidImageException(
            what + ": diff map " + map.digest() + ": " + blocks + " blocks of " + bs);
      }
      if (blockSize != 0 && bs != blockSize) {
        throw new InvalidImageException(
            what + ": diffs of blocks of " + blockSize + " and " + bs + " bytes");
      }
      blockSize = bs;
      if (blocks == 0) {
        diffs.add(new Diff(map, null, null, bs, 0));
        i++;
        continue;
      }
      if (i + 2 >= layers.size()
          || !MediaTypes.DISK_DIFF_ZSTD.equals(layers.get(i + 1).mediaType())) {
        throw new InvalidImageException(
            what
                + ": diff map "
                + map.digest()
                + " names "
                + blocks
                + " blocks but no "
                + MediaTypes.DISK_DIFF_ZSTD
                + " layer follows it");
      }
      Descriptor data = layers.get(i + 1);
      long dataSize = deviceSize(what, i + 1, data);
      if (dataSize < blocks * bs) {
        throw new InvalidImageException(
            what
                + ": diff "
                + data.digest()
                + " holds "
                + dataSize
                + " bytes, its map "
                + "names "
                + blocks
                + " blocks of "
                + bs);
      }
      diffs.add(new Diff(map, data, table(what, layers, i + 2, data), bs, blocks));
      i += 3;
    }
    if (diffs.size() > MAX_DIFFS) {
      throw new InvalidImageException(
          what + ": " + diffs.size() + " diffs, at most " + MAX_DIFFS + " (squash the chain)");
    }
    return new DiskImage(reference, manifestDigest, manifest, disk, diskTable, size, diffs);
  }

  private static long deviceSize(String what, int layer, Descriptor d)
      throws InvalidImageException {
    if (LazyImage.isCompressed(d)) {
      LazyImage.checkDeviceSize(what, layer, d);
      return LazyImage.deviceSize(d);
    }
    if (d.size() % ChunkDigestTable.BLOCK_SIZE != 0) {
      throw new InvalidImageException(
          what
              + ": layer "
              + layer
              + " of "
              + d.size()
              + " bytes is not a whole "
              + "number of 4 KiB blocks");
    }
    return d.size();
  }

  private static Descriptor table(String what, List<Descriptor> layers, int at, Descriptor blob)
      throws InvalidImageException {
    Descriptor t = at < layers.size() ? layers.get(at) : null;
    if (t == null
        || !MediaTypes.CHUNK_DIGESTS.equals(t.mediaType())
        || !blob.digest()
            .toString()
            .equals(t.annotation(LazyManifests.ANNOTATION_CHUNK_DIGESTS_BLOB))) {
      throw new InvalidImageException(
          what + ": layer " + at + " should be the chunk digest table of " + blob.digest());
    }
    return t;
  }

  /** Every layer the device reads, with their tables and maps: what a copy of the image carries. */
  public List<Descriptor> layers() {
    return manifest.layers();
  }

  // ---- building
  // ------------------------------------------------------------------------------------------

  /** A layer of compressed (or raw) chunks annotated with its table and uncompressed size. */
  public static Descriptor dataLayer(Descriptor blob, Descriptor table) {
    Map<String, String> ann = new TreeMap<>(blob.annotations());
    ann.put(LazyManifests.ANNOTATION_CHUNK_DIGESTS, table.digest().toString());
    return new Descriptor(blob.mediaType(), blob.digest(), blob.size(), ann, null);
  }

  /** A table layer annotated with the blob it describes. */
  public static Descriptor tableLayer(Descriptor table, Descriptor blob) {
    return new Descriptor(
        MediaTypes.CHUNK_DIGESTS,
        table.digest(),
        table.size(),
        Map.of(LazyManifests.ANNOTATION_CHUNK_DIGESTS_BLOB, blob.digest().toString()),
        null);
  }

  /** A diff map layer. */
  public static Descriptor mapLayer(Descriptor map, long blocks, int blockSize) {
    return new Descriptor(
        MediaTypes.DISK_DIFF_MAP,
        map.digest(),
        map.size(),
        Map.of(
            ANNOTATION_DIFF_BLOCKS,
            Long.toString(blocks),
            ANNOTATION_BLOCK_SIZE,
            Integer.toString(blockSize)),
        null);
  }

  /** The manifest of a disk image with these layers (in the order above). */
  public static Manifest manifest(
      Descriptor config, List<Descriptor> layers, long size, String parent) {
    Map<String, String> ann = new LinkedHashMap<>();
    ann.put(ANNOTATION_SIZE, Long.toString(size));
    if (parent != null) {
      ann.put(ANNOTATION_PARENT, parent);
    }
    return new Manifest(2, MediaTypes.OCI_MANIFEST, null, config, layers, ann);
  }
}

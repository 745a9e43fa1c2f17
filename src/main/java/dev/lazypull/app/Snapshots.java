package dev.lazypull.app;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.blob.BlobSource;
import dev.lazypull.blob.BoundedChannel;
import dev.lazypull.blob.ImageSource;
import dev.lazypull.copy.ImageCopier;
import dev.lazypull.copy.OciLayoutTarget;
import dev.lazypull.copy.RegistryTarget;
import dev.lazypull.fetch.BlobCacheDir;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.fetch.FetchStats;
import dev.lazypull.image.BlockMap;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.DiskImage;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.nbd.device.ImageDevices;
import dev.lazypull.nbd.server.ExportDevice;
import dev.lazypull.overlay.BlockStates;
import dev.lazypull.overlay.DiffPacker;
import dev.lazypull.overlay.Overlay;
import dev.lazypull.overlay.OverlayMeta;
import dev.lazypull.overlay.ZeroCheck;
import dev.lazypull.pack.BlobCompressor;
import dev.lazypull.registry.RawManifest;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import dev.lazypull.registry.RegistryImageSource;
import dev.lazypull.registry.Repository;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.roaringbitmap.RoaringBitmap;

/**
 * Snapshots of a writable export's overlay as disk images ({@link DiskImage}): one diff layer
 * holding only the dirty blocks that are not all zero (packed, compressed chunks, with its digest
 * table), its block map (those blocks and the zeroed ones), laid over the base's own layers, which
 * are referenced by digest and stored (or cross-mounted) beside the snapshot so it is served from
 * its destination alone. The base must be a disk image; a snapshot of a snapshot chains one more
 * diff, and {@code squash} folds the chain and the overlay into one diff over the disk.
 *
 * <p>From a stopped overlay ({@link #ofStopped}: its lock is taken, so no export starts meanwhile)
 * or from a live export at a flush point ({@link #ofLive}: writes are held off while the blocks are
 * read).
 */
public final class Snapshots {
  private Snapshots() {}

  /**
   * How to write it.
   *
   * @param destination {@code oci:DIR[:TAG]} or a registry reference
   * @param unit uncompressed bytes per compressed chunk of the diff
   * @param scratchRoot where the packed diff is staged
   */
  public record Options(
      String destination, boolean squash, int unit, int level, Path scratchRoot) {}

  /**
   * What was written.
   *
   * @param dataBlocks blocks in the diff's data
   * @param zeroBlocks blocks the diff zeroes
   * @param storedBytes the diff data layer's size (compressed), 0 when it has none
   * @param diffs diffs in the snapshot's chain
   */
  public record Result(
      Digest manifest,
      String target,
      long dataBlocks,
      long zeroBlocks,
      long storedBytes,
      int diffs) {
    public String line() {
      return "snapshot "
          + manifest
          + " at "
          + target
          + ": "
          + dataBlocks
          + " data blocks ("
          + storedBytes
          + " bytes stored), "
          + zeroBlocks
          + " zero blocks, "
          + diffs
          + " diff"
          + (diffs == 1 ? "" : "s");
    }
  }

  /**
   * A snapshot of the overlay in {@code dir}, which no export may be serving.
   *
   * @param cacheDir the host cache, for reading the base's diffs when squashing
   */
  public static Result ofStopped(
      Path dir, Options o, RegistryConfig registryConfig, Path cacheDir, FetchSettings fetch)
      throws IOException {
    try (Overlay.Stopped ov = Overlay.openStopped(dir);
        RegistryClient registry =
            RegistryClient.create(registryConfig.withMaxConnections(fetch.threadsPerOrigin()))) {
      OverlayMeta meta = ov.meta();
      ImageSource baseSource = Sources.over(registry).open(meta.baseImage());
      DiskImage base = baseOf(meta, baseSource);
      if (!o.squash() || base.diffs().isEmpty()) {
        return write(meta, ov.states(), ov, base, baseSource, null, o, registry);
      }
      try (FetchCore core =
              new FetchCore(fetch, new FetchStats(), BlobCacheDir.tablesDir(cacheDir));
          BlobCacheDir cache = BlobCacheDir.open(cacheDir, core)) {
        ExportDevice chain =
            ImageDevices.disk(base, baseSource.blobs(), cache, fetch.readTimeout()).device();
        return write(
            meta,
            ov.states(),
            ov,
            base,
            baseSource,
            new Chain(chain, fetch.readTimeout()),
            o,
            registry);
      }
    }
  }

  /**
   * A snapshot of a live export's overlay at a flush point: every write completed before it is in
   * the snapshot; writes wait meanwhile (reads go on).
   *
   * @param chain the export's base device (the base disk with its diffs), read when squashing
   */
  static Result ofLive(
      Overlay overlay,
      DiskImage base,
      ImageSource baseSource,
      ExportDevice chain,
      Duration timeout,
      Options o,
      RegistryClient registry)
      throws IOException {
    return overlay.atFlushPoint(
        (states, data) ->
            write(
                overlay.meta(),
                states,
                data::read,
                base,
                baseSource,
                o.squash() && !base.diffs().isEmpty() ? new Chain(chain, timeout) : null,
                o,
                registry));
  }

  /** The base disk image an overlay lies over, as it was when the overlay was made. */
  static DiskImage baseOf(OverlayMeta meta, ImageSource source) throws IOException {
    if (!meta.baseDevice().equals("disk")) {
      throw new IOException(
          "snapshots are of disk images; this overlay lies over the "
              + meta.baseDevice()
              + " device of "
              + meta.baseImage());
    }
    Images.Resolved r = Images.resolve(source, meta.baseImage());
    if (r.disk() == null || !r.manifestDigest().toString().equals(meta.baseManifest())) {
      throw new IOException(
          meta.baseImage()
              + " is now "
              + r.manifestDigest()
              + ", but the overlay lies over "
              + meta.baseManifest()
              + " (the tag moved): snapshot with the base it was made on");
    }
    return r.disk();
  }

  /** A base chain device read block range by block range (squash). */
  private record Chain(ExportDevice device, Duration timeout) {
    void read(long offset, ByteBuffer dst) throws IOException {
      try {
        device.prepare(offset, dst.remaining()).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
      } catch (ExecutionException e) {
        throw new IOException(
            "reading the base " + offset + "+" + dst.remaining() + ": " + e.getCause().getMessage(),
            e.getCause());
      } catch (TimeoutException e) {
        throw new IOException(
            "reading the base " + offset + "+" + dst.remaining() + " took longer than " + timeout);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted");
      }
      device.read(offset, dst);
    }
  }

  private static Result write(
      OverlayMeta meta,
      BlockStates states,
      Overlay.DataReader data,
      DiskImage base,
      ImageSource baseSource,
      Chain chain,
      Options o,
      RegistryClient registry)
      throws IOException {
    int bs = meta.blockSize();
    long size = meta.size();
    if (size != base.size()) {
      throw new IOException("the overlay has " + size + " bytes, the base disk " + base.size());
    }
    if (!base.diffs().isEmpty() && base.diffs().get(0).blockSize() != bs && chain == null) {
      throw new IOException(
          "the base's diffs have blocks of "
              + base.diffs().get(0).blockSize()
              + " bytes, the "
              + "overlay "
              + bs
              + ": snapshot with --squash (one diff over the disk)");
    }
    Files.createDirectories(o.scratchRoot());
    Path scratch = Files.createTempDirectory(o.scratchRoot(), "lazypull-snapshot-");
    try {
      RoaringBitmap take;
      RoaringBitmap knownZero;
      DiffPacker.BlockReader reader;
      if (chain == null) {
        take = states.dirty();
        knownZero = states.zero();
        reader = data::read;
      } else { // every block the chain or the overlay covers, read as the export reads it
        take = new RoaringBitmap();
        for (DiskImage.Diff d : base.diffs()) {
          BlockMap m =
              BlockMap.decode(
                  baseSource.blobs().readVerified(d.map(), BlockMap.MAX_BYTES, "diff block map"));
          take.or(m.data());
          take.or(m.zero());
        }
        take.or(states.dirty());
        take.andNot(states.zero());
        knownZero = states.zero();
        reader = (offset, dst) -> readMerged(states, bs, data, chain, offset, dst);
      }
      Path packed = scratch.resolve("packed");
      DiffPacker.Packed p;
      try (FileChannel out =
          FileChannel.open(packed, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
        p = DiffPacker.pack(take, knownZero, bs, size, reader, out);
        long padded =
            (p.bytes() + ChunkDigestTable.BLOCK_SIZE - 1)
                / ChunkDigestTable.BLOCK_SIZE
                * ChunkDigestTable.BLOCK_SIZE;
        if (padded > p.bytes()) {
          out.write(ByteBuffer.allocate((int) (padded - p.bytes())), p.bytes());
        }
      }
      Local local = new Local();
      List<Descriptor> layers = new ArrayList<>();
      List<String> diffIds = new ArrayList<>(baseDiffIds(base, baseSource, chain != null));
      layers.addAll(chain != null ? base.layers().subList(0, 2) : base.layers());
      long blocks = p.data().getLongCardinality();
      Descriptor mapBlob =
          local.bytes(
              new BlockMap(bs, size, p.data(), p.zero()).encode(), MediaTypes.DISK_DIFF_MAP);
      layers.add(DiskImage.mapLayer(mapBlob, blocks, bs));
      diffIds.add(mapBlob.digest().toString());
      long stored = 0;
      if (blocks > 0) {
        Path compressed = scratch.resolve("diff");
        BlobCompressor.Compressed c =
            BlobCompressor.compress(packed, compressed, o.unit(), o.level());
        Descriptor dataBlob = c.descriptor(MediaTypes.DISK_DIFF_ZSTD);
        local.file(dataBlob, compressed);
        Descriptor table = local.bytes(c.table().encode(), MediaTypes.CHUNK_DIGESTS);
        layers.add(DiskImage.dataLayer(dataBlob, table));
        layers.add(DiskImage.tableLayer(table, dataBlob));
        diffIds.add(c.uncompressedDigest().toString());
        diffIds.add(table.digest().toString());
        stored = dataBlob.size();
      }
      Descriptor config =
          local.bytes(LazyManifests.minimalConfigWithDiffIds(diffIds), MediaTypes.OCI_CONFIG);
      byte[] manifestBytes =
          Json.write(DiskImage.manifest(config, layers, size, base.manifestDigest().toString()));
      Digest manifestDigest = Digest.of(manifestBytes);
      DiskImage written =
          DiskImage.of(
              o.destination(),
              manifestDigest,
              Json.parse(
                  manifestBytes,
                  Manifest.class,
                  "snapshot manifest")); // what readers will check, checked first
      String target =
          publish(
              o.destination(), base, baseSource, local, config, written, manifestBytes, registry);
      return new Result(
          manifestDigest,
          target,
          blocks,
          p.zero().getLongCardinality(),
          stored,
          written.diffs().size());
    } finally {
      deleteTree(scratch);
    }
  }

  /** Reads device bytes as the export would: overlay data, overlay zeros, else the base chain. */
  private static void readMerged(
      BlockStates states, int bs, Overlay.DataReader data, Chain chain, long offset, ByteBuffer dst)
      throws IOException {
    long end = offset + dst.remaining();
    List<long[]> runs = new ArrayList<>();
    states.forEachRun(
        offset / bs, (end - 1) / bs + 1, (a, b, s) -> runs.add(new long[] {a, b, s.ordinal()}));
    for (long[] r : runs) {
      long from = Math.max(offset, r[0] * bs);
      long to = Math.min(end, r[1] * bs);
      ByteBuffer part = dst.slice(dst.position(), (int) (to - from));
      BlockStates.State s = BlockStates.State.values()[(int) r[2]];
      switch (s) {
        case DIRTY -> data.read(from, part);
        case ZERO -> ZeroCheck.fill(part, part.remaining());
        case UNTOUCHED -> chain.read(from, part);
        default -> throw new IllegalStateException();
      }
      dst.position(dst.position() + (int) (to - from));
    }
  }

  /**
   * The base layers' diff_ids from its config, as many as the layers kept; layer digests when it
   * has none.
   */
  private static List<String> baseDiffIds(DiskImage base, ImageSource source, boolean diskOnly) {
    int n = diskOnly ? 2 : base.layers().size();
    List<String> out = new ArrayList<>();
    try {
      JsonNode ids =
          Json.MAPPER
              .readTree(
                  source
                      .blobs()
                      .readVerified(base.manifest().config(), Json.MAX_DOCUMENT_BYTES, "config"))
              .path("rootfs")
              .path("diff_ids");
      if (ids.size() == base.layers().size()) {
        for (int i = 0; i < n; i++) {
          out.add(ids.get(i).asText());
        }
        return out;
      }
    } catch (IOException e) {
      // the digests below are as good for a config nobody reads for bytes
    }
    for (int i = 0; i < n; i++) {
      out.add(base.layers().get(i).digest().toString());
    }
    return out;
  }

  /**
   * Stores the base's layers (from its source) and the new blobs, then the manifest, at the
   * destination.
   */
  private static String publish(
      String destination,
      DiskImage base,
      ImageSource baseSource,
      Local local,
      Descriptor config,
      DiskImage written,
      byte[] manifestBytes,
      RegistryClient registry)
      throws IOException {
    ImageReference ref;
    try {
      ref = ImageReference.parse(destination);
    } catch (IllegalArgumentException e) {
      throw new IOException("bad destination '" + destination + "': " + e.getMessage(), e);
    }
    ImageCopier.Target target =
        ref instanceof ImageReference.OciLayout oci
            ? new OciLayoutTarget(oci.dir(), oci.tag())
            : new RegistryTarget(registry.pusher(), (ImageReference.Registry) ref);
    Repository fromRepo = baseSource instanceof RegistryImageSource r ? r.repository() : null;
    for (Descriptor layer : written.layers()) {
      boolean ours = local.has(layer.digest());
      target.putBlob(layer, ours ? local : baseSource.blobs(), ours ? null : fromRepo);
    }
    target.putBlob(config, local, null);
    return target.putManifest(
        new RawManifest(manifestBytes, MediaTypes.OCI_MANIFEST, Digest.of(manifestBytes)));
  }

  /** The snapshot's own blobs, in memory (small ones) or in scratch files, as a blob source. */
  private static final class Local implements BlobSource {
    private final Map<Digest, byte[]> bytes = new HashMap<>();
    private final Map<Digest, Path> files = new HashMap<>();

    Descriptor bytes(byte[] b, String mediaType) {
      Descriptor d = new Descriptor(mediaType, Digest.of(b), b.length);
      bytes.put(d.digest(), b);
      return d;
    }

    void file(Descriptor d, Path p) {
      files.put(d.digest(), p);
    }

    boolean has(Digest d) {
      return bytes.containsKey(d) || files.containsKey(d);
    }

    @Override
    public ReadableByteChannel openRange(Descriptor blob, long offset, long length)
        throws IOException {
      byte[] b = bytes.get(blob.digest());
      if (b != null) {
        return Channels.newChannel(new ByteArrayInputStream(b, (int) offset, (int) length));
      }
      Path p = files.get(blob.digest());
      if (p == null) {
        throw new IOException("no snapshot blob " + blob.digest());
      }
      FileChannel ch = FileChannel.open(p, StandardOpenOption.READ);
      ch.position(offset);
      return new BoundedChannel(ch, length, p.toString());
    }

    @Override
    public String describe() {
      return "the snapshot being written";
    }
  }

  private static void deleteTree(Path dir) {
    try (var s = Files.walk(dir)) {
      s.sorted(Comparator.reverseOrder())
          .forEach(
              p -> {
                try {
                  Files.deleteIfExists(p);
                } catch (IOException e) {
                  // best effort: a scratch dir
                }
              });
    } catch (IOException e) {
      // best effort
    }
  }
}

package dev.lazypull.index;

import dev.lazypull.erofs.ErofsWriter;
import dev.lazypull.gzindex.GzipIndexer;
import dev.lazypull.gzindex.SpanTable;
import dev.lazypull.gzindex.Zinfo;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.pack.ImageBuilder;
import dev.lazypull.pack.ImageOutput;
import dev.lazypull.pack.Progress;
import dev.lazypull.pack.TarApplier;
import dev.lazypull.pack.VerifyingInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;

/**
 * {@code lazypull index}: builds the side-car index of an unmodified image by reading each layer
 * once, as a stream. Per gzip layer one pass inflates it (checking every member's CRC and length),
 * records checkpoints (the zinfo, written straight to a scratch file) and per-span digests, lists
 * the tar in the same pass and applies it — whiteouts and opaque directories as {@code convert}
 * applies them — to one merged tree whose regular files point into the layer's virtual device
 * ({@link DeviceBuilder}), whose digests it computes on the way. The layer's sha256 and size are
 * checked at its end; nothing is published unless all layers verify. Memory is bounded by the file
 * count (the tree, 16 bytes per file of device map), never by layer sizes.
 */
public final class IndexBuilder {
  static final Set<String> GZIP =
      Set.of(
          MediaTypes.OCI_LAYER_TAR_GZIP,
          MediaTypes.DOCKER_LAYER_TAR_GZIP,
          "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip");
  static final Set<String> TAR =
      Set.of(
          MediaTypes.OCI_LAYER_TAR,
          "application/vnd.docker.image.rootfs.diff.tar",
          "application/vnd.oci.image.layer.nondistributable.v1.tar");
  static final Set<String> ZSTD =
      Set.of(
          MediaTypes.OCI_LAYER_TAR_ZSTD,
          "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd");

  /** The largest tar a layer may inflate to (the device map's bound): a zip-bomb guard. */
  static final long MAX_TAR = 1L << 50;

  /** Opens a layer's stored bytes, from the start, as a stream. */
  public interface LayerReader {
    InputStream open(Descriptor layer) throws IOException;
  }

  /**
   * @param spanSize uncompressed bytes between gzip checkpoints (default 4 MiB, as SOCI and
   *     erofs-utils)
   * @param chunkSize the bootstrap's EROFS chunk size (power of two, 4 KiB..1 GiB)
   * @param entrySize bytes per chunk digest table entry of each device: the verification and fetch
   *     unit
   */
  public record Options(long spanSize, int chunkSize, int entrySize) {
    public static final int DEFAULT_CHUNK_SIZE = 1 << 20;
    public static final int DEFAULT_ENTRY_SIZE = 256 << 10;

    public Options {
      if (spanSize < (64 << 10) || spanSize > (1L << 30)) {
        throw new IllegalArgumentException("span size must be in [64 KiB, 1 GiB]: " + spanSize);
      }
      if (Integer.bitCount(chunkSize) != 1 || chunkSize < 4096 || chunkSize > (1 << 30)) {
        throw new IllegalArgumentException(
            "chunk size must be a power of two in [4 KiB, 1 GiB]: " + chunkSize);
      }
      if (entrySize < 4096 || entrySize % 4096 != 0 || entrySize > (16 << 20)) {
        throw new IllegalArgumentException(
            "entry size must be a multiple of 4 KiB up to 16 MiB: " + entrySize);
      }
    }

    public static Options defaults() {
      return new Options(GzipIndexer.DEFAULT_SPAN, DEFAULT_CHUNK_SIZE, DEFAULT_ENTRY_SIZE);
    }

    public Options withSpanSize(long s) {
      return new Options(s, chunkSize, entrySize);
    }

    public Options withEntrySize(int e) {
      return new Options(spanSize, chunkSize, e);
    }
  }

  /** What one layer turned into. {@code device} is null for a layer without file data. */
  public record LayerStats(
      Descriptor layer, long tarSize, int checkpoints, IndexArtifact.Device device) {}

  /** The published index. */
  public record Result(
      Descriptor manifest,
      byte[] manifestBytes,
      Descriptor bootstrap,
      List<LayerStats> layers,
      long files) {
    /**
     * Bytes of every part: manifest, bootstrap, zinfos, span tables, device maps, digest tables.
     */
    public long indexBytes() {
      long n = manifestBytes.length + bootstrap.size();
      for (LayerStats l : layers) {
        IndexArtifact.Device d = l.device();
        if (d != null) {
          n +=
              d.map().size()
                  + d.table().size()
                  + (d.zinfo() == null ? 0 : d.zinfo().size() + d.spans().size());
        }
      }
      return n;
    }
  }

  private IndexBuilder() {}

  /**
   * Indexes the image whose manifest is {@code subject} (its layers {@code layers}, in order),
   * writing the parts and finally the artifact manifest to {@code out}, published there.
   */
  public static Result build(
      String reference,
      Descriptor subject,
      List<Descriptor> layers,
      LayerReader reader,
      Options o,
      ImageOutput out,
      Progress progress)
      throws IOException {
    for (Descriptor l : layers) {
      if (ZSTD.contains(l.mediaType())) {
        throw new InvalidImageException(
            reference
                + ": layer "
                + l.digest()
                + " is zstd-compressed ("
                + l.mediaType()
                + "): lazypull index does not support zstd layers yet (gzip and uncompressed tar only; `lazypull convert`"
                + " takes zstd)");
      }
      if (!GZIP.contains(l.mediaType()) && !TAR.contains(l.mediaType())) {
        throw new InvalidImageException(
            reference
                + ": layer "
                + l.digest()
                + " has media type "
                + l.mediaType()
                + " (lazypull index reads tar and tar+gzip layers)");
      }
    }
    TarApplier.FileData[] current = new TarApplier.FileData[1];
    TarApplier applier =
        new TarApplier(
            (file, e, tarOffset, data) -> current[0].store(file, e, tarOffset, data), progress);
    List<LayerStats> stats = new ArrayList<>();
    List<IndexArtifact.Device> devices = new ArrayList<>();
    for (int i = 0; i < layers.size(); i++) {
      Descriptor l = layers.get(i);
      String what = reference + " layer " + (i + 1) + " (" + l.digest().shortHex() + ")";
      progress.stage(
          "layer "
              + (i + 1)
              + "/"
              + layers.size()
              + ": "
              + l.digest()
              + " ("
              + l.size()
              + " bytes)");
      DeviceBuilder dev = new DeviceBuilder(devices.size() + 1, o.chunkSize(), o.entrySize());
      current[0] = dev;
      boolean gzip = GZIP.contains(l.mediaType());
      Path zinfoFile = gzip ? out.newScratchFile() : null;
      long tarSize;
      int checkpoints = 0;
      byte[] spans = null;
      Digest zinfoDigest = null;
      long zinfoSize = 0;
      try (InputStream raw = reader.open(l)) {
        if (gzip) {
          try (FileChannel ch =
              FileChannel.open(zinfoFile, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            Zinfo.Writer zw = new Zinfo.Writer(ch, o.spanSize());
            GzipIndexer gz =
                new GzipIndexer(raw, new GzipIndexer.Options(o.spanSize(), false, MAX_TAR), zw);
            applier.apply(gz, what, i + 1, true);
            GzipIndexer.Result r = gz.finish();
            check(what, l, r.sha256(), r.compressedSize());
            zinfoSize = zw.finish();
            zinfoDigest = sha256(ch, zinfoSize);
            spans = SpanTable.of(r, HexFormat.of().parseHex(zinfoDigest.hex())).encode();
            tarSize = r.uncompressedSize();
            checkpoints = r.checkpoints().size();
          }
        } else {
          // fails at the end unless the layer has its descriptor's size and sha256
          InputStream tar = new VerifyingInputStream(raw, l, what);
          applier.apply(tar, what, i + 1, true);
          tar.transferTo(OutputStream.nullOutputStream());
          tarSize = l.size();
        }
      }
      IndexArtifact.Device device = null;
      if (!dev.isEmpty()) {
        DeviceBuilder.Built b = dev.finish();
        Descriptor zinfo = null;
        Descriptor spansDesc = null;
        byte[] zeros = new byte[32];
        if (gzip) {
          zinfo = out.putFile(zinfoFile, IndexArtifact.ZINFO, zinfoDigest);
          spansDesc = out.putBytes(spans, IndexArtifact.SPANS);
        }
        DeviceMap map =
            new DeviceMap(
                gzip ? DeviceMap.GZIP : DeviceMap.TAR,
                b.size(),
                b.sha256(),
                HexFormat.of().parseHex(l.digest().hex()),
                l.size(),
                tarSize,
                gzip ? HexFormat.of().parseHex(zinfoDigest.hex()) : zeros,
                zinfoSize,
                gzip ? HexFormat.of().parseHex(spansDesc.digest().hex()) : zeros,
                gzip ? spans.length : 0,
                b.tarOffsets(),
                b.lengths());
        Descriptor mapDesc = out.putBytes(map.encode(), IndexArtifact.DEVICE_MAP);
        Descriptor table = out.putBytes(b.table().encode(), MediaTypes.CHUNK_DIGESTS);
        device =
            new IndexArtifact.Device(
                l.digest(), b.digest(), b.size(), zinfo, spansDesc, mapDesc, table);
        devices.add(device);
      }
      stats.add(new LayerStats(l, tarSize, checkpoints, device));
    }
    long[] buildTime = ImageBuilder.mostCommonMtime(applier.root());
    List<ErofsWriter.Device> devs = new ArrayList<>();
    for (IndexArtifact.Device d : devices) {
      devs.add(new ErofsWriter.Device(d.device().hex(), d.deviceSize()));
    }
    Path bootFile = out.newScratchFile();
    Digest bootDigest;
    try (FileChannel ch =
        FileChannel.open(bootFile, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      ErofsWriter.write(
          applier.root(),
          new ErofsWriter.Options(
              Integer.numberOfTrailingZeros(o.chunkSize()), buildTime[0], (int) buildTime[1]),
          devs,
          ch);
      bootDigest = sha256(ch, ch.size());
    }
    Descriptor boot = out.putFile(bootFile, MediaTypes.EROFS_BOOTSTRAP, bootDigest);
    out.putBytes(IndexArtifact.EMPTY, MediaTypes.OCI_EMPTY);
    byte[] manifest =
        IndexArtifact.manifest(subject, boot, devices, o.spanSize(), o.chunkSize(), o.entrySize());
    Descriptor m = out.putBytes(manifest, MediaTypes.OCI_MANIFEST);
    out.publish(m);
    progress.stage(
        "published index " + m.digest() + " of " + subject.digest() + " to " + out.describe());
    return new Result(m, manifest, boot, stats, progress.files.get());
  }

  private static void check(String what, Descriptor l, byte[] sha256, long size)
      throws IOException {
    String actual = HexFormat.of().formatHex(sha256);
    if (size != l.size() || !actual.equals(l.digest().hex())) {
      throw new IOException(
          what
              + ": the layer read has "
              + size
              + " bytes and sha256:"
              + actual
              + "; the manifest says "
              + l.size()
              + " bytes, "
              + l.digest()
              + " (nothing was published)");
    }
  }

  private static Digest sha256(FileChannel ch, long size) throws IOException {
    MessageDigest md = Digest.sha256();
    ByteBuffer buf = ByteBuffer.allocate(1 << 16);
    long pos = 0;
    while (pos < size) {
      buf.clear();
      int n = ch.read(buf, pos);
      if (n < 0) {
        throw new IOException("scratch file shrank");
      }
      buf.flip();
      md.update(buf);
      pos += n;
    }
    return new Digest(HexFormat.of().formatHex(md.digest()));
  }
}

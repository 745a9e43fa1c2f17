package dev.lazypull.cli;

import dev.lazypull.compress.Compression;
import dev.lazypull.compress.ZstdCodec;
import dev.lazypull.image.ImageReference;
import dev.lazypull.pack.ImageOutput;
import dev.lazypull.pack.OciLayoutOutput;
import dev.lazypull.pack.Packer;
import dev.lazypull.pack.Progress;
import dev.lazypull.pack.RegistryOutput;
import dev.lazypull.registry.RegistryClient;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import picocli.CommandLine.Option;

/**
 * Options shared by {@code pack} and {@code convert}: chunking, threads, scratch space, and where
 * the image goes.
 */
final class BuildOptions {
  @Option(
      names = "--chunk-size",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description = "Chunk size of regular files: a power of two from 4K to 16M (default: 1M).")
  long chunkSize = Packer.DEFAULT_CHUNK_SIZE;

  @Option(
      names = "--compression",
      paramLabel = "ALG",
      description =
          "How data blobs store chunks: zstd (each chunk an independent zstd frame; fetched and cached "
              + "decompressed) or none (raw, as images before compression). Default: ${DEFAULT-VALUE}.")
  String compression = DEFAULT_COMPRESSION.flag();

  @Option(
      names = "--compression-level",
      paramLabel = "N",
      description =
          "zstd level, "
              + ZstdCodec.MIN_LEVEL
              + ".."
              + ZstdCodec.MAX_LEVEL
              + " except 0 (default: "
              + ZstdCodec.DEFAULT_LEVEL
              + "; higher: smaller and slower to build, as fast to read).")
  int compressionLevel = ZstdCodec.DEFAULT_LEVEL;

  /** What {@code pack}, {@code convert} and {@code import} write unless told otherwise. */
  static final Compression DEFAULT_COMPRESSION = Compression.ZSTD;

  @Option(
      names = "--threads",
      paramLabel = "N",
      description = "Hashing threads (default: the CPU count).")
  int threads = Runtime.getRuntime().availableProcessors();

  @Option(
      names = "--mtime",
      paramLabel = "TIME",
      description =
          "Give every file this mtime: seconds since the epoch or an ISO-8601 instant "
              + "(e.g. 2024-01-01T00:00:00Z). Default: keep the sources' mtimes.")
  String mtime;

  @Option(
      names = "--scratch-dir",
      paramLabel = "DIR",
      description =
          "Where a registry push stages the image's blobs and a registry source's layers are downloaded "
              + "(default: $TMPDIR, else /var/tmp).")
  Path scratchDir;

  @Option(
      names = "--mount-from",
      paramLabel = "REPO",
      description =
          "When pushing: mount blobs the destination lacks from this repository of the same registry "
              + "(e.g. another image built on the same base layers) instead of uploading them, where the registry "
              + "allows it.")
  String mountFrom;

  /**
   * Scratch space for registry pushes and downloads: large (whole blobs), so not /tmp by default.
   */
  Path scratchRoot() {
    if (scratchDir != null) {
      return scratchDir;
    }
    String env = System.getenv("TMPDIR");
    return Path.of(env != null && !env.isBlank() ? env : "/var/tmp");
  }

  Long mtimeSeconds() {
    if (mtime == null) {
      return null;
    }
    try {
      return Long.parseLong(mtime.trim());
    } catch (NumberFormatException e) {
      try {
        return Instant.parse(mtime.trim()).getEpochSecond();
      } catch (DateTimeParseException e2) {
        throw new IllegalArgumentException(
            "--mtime: not seconds since the epoch nor an ISO-8601 instant: " + mtime);
      }
    }
  }

  /**
   * The {@code --compression} choice; a bad name or level is an IllegalArgumentException naming the
   * option.
   */
  Compression checkedCompression() {
    return checkedCompression(compression, compressionLevel);
  }

  static Compression checkedCompression(String name, int level) {
    Compression c;
    try {
      c = Compression.parse(name);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("--compression: " + e.getMessage());
    }
    if (c != Compression.NONE
        && (level < ZstdCodec.MIN_LEVEL || level > ZstdCodec.MAX_LEVEL || level == 0)) {
      throw new IllegalArgumentException(
          "--compression-level must be from "
              + ZstdCodec.MIN_LEVEL
              + " to "
              + ZstdCodec.MAX_LEVEL
              + ", not 0: "
              + level);
    }
    return c;
  }

  /** The build options as the packer takes them. */
  Packer.Options packerOptions(long blobCap) {
    return new Packer.Options(
        checkedChunkSize(),
        blobCap,
        threads,
        mtimeSeconds(),
        checkedCompression(),
        compressionLevel);
  }

  int checkedChunkSize() {
    if (Long.bitCount(chunkSize) != 1 || chunkSize < 4096 || chunkSize > (16 << 20)) {
      throw new IllegalArgumentException(
          "--chunk-size must be a power of two from 4K to 16M: " + chunkSize);
    }
    return (int) chunkSize;
  }

  /**
   * Opens the output named by {@code target}: a local OCI layout, or a push through {@code client}.
   */
  ImageOutput openOutput(ImageReference target, RegistryClient client, Progress progress)
      throws IOException {
    if (target instanceof ImageReference.OciLayout oci) {
      return new OciLayoutOutput(oci.dir(), oci.tag());
    }
    return new RegistryOutput(
        client.pusher(), (ImageReference.Registry) target, scratchRoot(), mountFrom, progress);
  }

  /** Parses an image reference; a malformed one is an error naming it. */
  static ImageReference parseReference(String text) {
    try {
      return ImageReference.parse(text);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("bad image reference '" + text + "': " + e.getMessage());
    }
  }
}

package dev.lazypull.cli;

import dev.lazypull.image.ImageReference;
import dev.lazypull.pack.ImageOutput;
import dev.lazypull.pack.OciLayoutOutput;
import dev.lazypull.pack.Packer;
import java.io.IOException;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import picocli.CommandLine.Option;

/** Options shared by {@code pack} and {@code convert}: chunking, threads, and where the image goes. */
final class BuildOptions {
  @Option(names = "--chunk-size", paramLabel = "SIZE", converter = Units.SizeConverter.class,
      description = "Chunk size of regular files: a power of two from 4K to 16M (default: 1M).")
  long chunkSize = Packer.DEFAULT_CHUNK_SIZE;

  @Option(names = "--threads", paramLabel = "N", description = "Hashing threads (default: the CPU count).")
  int threads = Runtime.getRuntime().availableProcessors();

  @Option(names = "--mtime", paramLabel = "TIME",
      description = "Give every file this mtime: seconds since the epoch or an ISO-8601 instant "
          + "(e.g. 2024-01-01T00:00:00Z). Default: keep the sources' mtimes.")
  String mtime;

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
        throw new IllegalArgumentException("--mtime: not seconds since the epoch nor an ISO-8601 instant: " + mtime);
      }
    }
  }

  int checkedChunkSize() {
    if (Long.bitCount(chunkSize) != 1 || chunkSize < 4096 || chunkSize > (16 << 20)) {
      throw new IllegalArgumentException("--chunk-size must be a power of two from 4K to 16M: " + chunkSize);
    }
    return (int) chunkSize;
  }

  /**
   * Opens the output named by {@code target}. Registry pushes need the registry client, which is not part of
   * this build yet: they are refused up front, before any work, rather than pretended.
   */
  static ImageOutput openOutput(String target) throws IOException {
    ImageReference ref = parseReference(target);
    if (ref instanceof ImageReference.OciLayout oci) {
      return new OciLayoutOutput(oci.dir(), oci.tag());
    }
    throw new UnsupportedOperationException(pushPending(target));
  }

  /** Parses an image reference; a malformed one is an error naming it. */
  static ImageReference parseReference(String text) {
    try {
      return ImageReference.parse(text);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("bad image reference '" + text + "': " + e.getMessage());
    }
  }

  static String pushPending(String target) {
    return "pushing to a registry (" + target + ") is not available yet: it needs the registry client, which "
        + "is pending; write to --output oci:DIR[:TAG] and copy the layout with an OCI tool (skopeo, crane, oras)";
  }
}

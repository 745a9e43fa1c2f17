package dev.lazypull.overlay;

import dev.lazypull.image.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What an overlay lies over, kept beside it as {@code overlay.json}: the block size, the device
 * size and the base device — the image (as it was named, and its manifest digest) and which of its
 * devices. An overlay is only ever opened again over the same base device, and snapshots find their
 * base through it.
 *
 * @param version 1
 * @param blockSize bytes per block (a power of two from 512 to 64 KiB); 0 only in what an export
 *     asks for: the overlay's own, or {@value #DEFAULT_BLOCK_SIZE} for a new one
 * @param size the device size in bytes
 * @param baseImage the base image's reference as given when the overlay was created (for people and
 *     snapshots)
 * @param baseManifest the base image's manifest digest ({@code sha256:…}): what identifies the base
 * @param baseDevice which device of the base image: {@code disk}, {@code flattened} or {@code blob
 *     sha256:…}
 */
public record OverlayMeta(
    int version,
    int blockSize,
    long size,
    String baseImage,
    String baseManifest,
    String baseDevice) {
  public static final int VERSION = 1;
  public static final String FILE = "overlay.json";
  public static final int DEFAULT_BLOCK_SIZE = 4096;

  public OverlayMeta {
    if (blockSize != 0
        && (blockSize < 512 || blockSize > (64 << 10) || Integer.bitCount(blockSize) != 1)) {
      throw new IllegalArgumentException(
          "block size " + blockSize + ": a power of two from 512 to 64K");
    }
    if (size < 0) {
      throw new IllegalArgumentException("device size " + size);
    }
    if (blockSize != 0 && (size + blockSize - 1) / blockSize > BlockStates.MAX_BLOCKS) {
      throw new IllegalArgumentException(
          "a device of "
              + size
              + " bytes has more than "
              + BlockStates.MAX_BLOCKS
              + " blocks of "
              + blockSize
              + " bytes; choose a larger --block-size");
    }
  }

  /** Blocks of the device (the last one may be short). */
  public long blocks() {
    return (size + blockSize - 1) / blockSize;
  }

  /** This, with {@code n}-byte blocks. */
  public OverlayMeta withBlockSize(int n) {
    return new OverlayMeta(version, n, size, baseImage, baseManifest, baseDevice);
  }

  /** Whether {@code other} names the same base device (the image reference text may differ). */
  public boolean sameBase(OverlayMeta other) {
    return baseManifest.equals(other.baseManifest)
        && baseDevice.equals(other.baseDevice)
        && size == other.size;
  }

  static OverlayMeta read(Path file) throws IOException {
    OverlayMeta m = Json.parse(Files.readAllBytes(file), OverlayMeta.class, file.toString());
    if (m.version() != VERSION) {
      throw new IOException(file + ": overlay version " + m.version() + ", expected " + VERSION);
    }
    return m;
  }

  byte[] encode() {
    return Json.write(this);
  }
}

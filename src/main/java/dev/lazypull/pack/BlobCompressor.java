package dev.lazypull.pack;

import dev.lazypull.compress.Compression;
import dev.lazypull.compress.ZstdCodec;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.MediaTypes;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Map;

/**
 * Compresses an existing raw data blob (an EROFS extra device, e.g. from {@code mkfs.erofs
 * --blobdev}) into a blob of compressed chunks: fixed units of {@code unit} bytes (the last one
 * shorter), each one zstd frame, with its version 2 chunk digest table. The device keeps its
 * addresses: only how its bytes are stored changes. Used by {@code import}; deterministic (same
 * file, unit and level, same bytes).
 */
public final class BlobCompressor {
  private BlobCompressor() {}

  /** The blob of compressed chunks as written to {@code scratch}, not yet committed. */
  public record Compressed(
      Path scratch,
      Digest digest,
      long storedSize,
      ChunkDigestTable table,
      Digest uncompressedDigest) {
    /** Its descriptor: media type, stored size, uncompressed-size annotation. */
    public Descriptor descriptor() {
      return descriptor(MediaTypes.EROFS_BLOB_ZSTD);
    }

    /** Its descriptor as a layer of {@code mediaType} (a disk, a diff). */
    public Descriptor descriptor(String mediaType) {
      return new Descriptor(
          mediaType,
          digest,
          storedSize,
          Map.of(LazyManifests.ANNOTATION_UNCOMPRESSED_SIZE, Long.toString(table.blobSize())),
          null);
    }
  }

  /**
   * Compresses {@code raw} into {@code scratch} (truncated first).
   *
   * @param unit uncompressed bytes per chunk: a multiple of 4096 up to {@link
   *     ChunkDigestTable#MAX_COMPRESSED_ENTRY}
   * @throws IOException when {@code raw} is empty or not a whole number of 4 KiB blocks (an EROFS
   *     device is)
   */
  public static Compressed compress(Path raw, Path scratch, int unit, int level)
      throws IOException {
    return compress(raw, -1, scratch, unit, level);
  }

  /**
   * As {@link #compress(Path, Path, int, int)}, for a device of {@code deviceSize} bytes (a whole
   * number of 4 KiB blocks) whose bytes past the end of {@code raw} are zeros — a disk of any size
   * padded to 4 KiB. A {@code deviceSize} of -1 is the file's size.
   */
  public static Compressed compress(Path raw, long deviceSize, Path scratch, int unit, int level)
      throws IOException {
    if (unit <= 0
        || unit % ChunkDigestTable.BLOCK_SIZE != 0
        || unit > ChunkDigestTable.MAX_COMPRESSED_ENTRY) {
      throw new IllegalArgumentException("unit of " + unit + " bytes");
    }
    try (FileChannel in = FileChannel.open(raw, StandardOpenOption.READ);
        FileChannel out =
            FileChannel.open(
                scratch,
                StandardOpenOption.WRITE,
                StandardOpenOption.CREATE,
                StandardOpenOption.TRUNCATE_EXISTING);
        ZstdCodec.Compressor zstd = new ZstdCodec.Compressor(level)) {
      long fileSize = in.size();
      long size = deviceSize < 0 ? fileSize : deviceSize;
      if (size == 0 || size % ChunkDigestTable.BLOCK_SIZE != 0 || fileSize > size) {
        throw new IOException(
            raw
                + ": "
                + size
                + " bytes is not a whole number of 4 KiB blocks; import it with "
                + "--compression none");
      }
      ChunkDigestTable.Builder table = new ChunkDigestTable.Builder(Compression.ZSTD);
      MessageDigest stored = Digest.sha256();
      MessageDigest device = Digest.sha256();
      MessageDigest chunk = Digest.sha256();
      ByteBuffer buf = ByteBuffer.allocateDirect(unit);
      ByteBuffer frame = ByteBuffer.allocateDirect((int) ZstdCodec.maxFrameLength(unit));
      long storedEnd = 0;
      for (long pos = 0; pos < size; pos += unit) {
        int len = (int) Math.min(unit, size - pos);
        buf.clear().limit(len);
        while (buf.hasRemaining()) {
          long at = pos + buf.position();
          if (at >= fileSize) { // the padding past the file: zeros
            while (buf.hasRemaining()) {
              buf.put((byte) 0);
            }
          } else if (in.read(buf, at) < 0) {
            throw new EOFException(raw + " shrank while it was read");
          }
        }
        buf.flip();
        device.update(buf.duplicate());
        chunk.update(buf.duplicate());
        byte[] sha = chunk.digest();
        zstd.compress(buf.duplicate(), frame.clear());
        frame.flip();
        int n = frame.remaining();
        stored.update(frame.duplicate());
        while (frame.hasRemaining()) {
          storedEnd += out.write(frame, storedEnd);
        }
        table.add(len, n, sha);
      }
      HexFormat hex = HexFormat.of();
      return new Compressed(
          scratch,
          new Digest(hex.formatHex(stored.digest())),
          storedEnd,
          table.build(),
          new Digest(hex.formatHex(device.digest())));
    }
  }
}

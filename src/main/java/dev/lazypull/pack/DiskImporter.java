package dev.lazypull.pack;

import dev.lazypull.compress.Compression;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.DiskImage;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.MediaTypes;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;

/**
 * {@code lazypull import --disk FILE}: a raw disk image (ext4, a partition table, anything) as a
 * one-layer disk image ({@link DiskImage}) — its bytes in chunks of {@code unit} bytes, each a zstd
 * frame (or stored raw), with a chunk digest table, so {@code lazypull nbd} serves it lazily and
 * verified. A disk whose size is not a whole number of 4 KiB blocks is padded with zeros in the
 * layer; the manifest keeps its true size.
 */
public final class DiskImporter {
  private DiskImporter() {}

  /** The manifest committed (not yet published) and what it holds. */
  public record Imported(Descriptor manifest, Descriptor disk, Descriptor table, long size) {}

  /**
   * Writes the disk's layers, table, config and manifest to {@code out}; the caller publishes the
   * manifest.
   *
   * @param unit uncompressed bytes per chunk (a multiple of 4 KiB up to 16 MiB)
   */
  public static Imported importDisk(
      Path file, ImageOutput out, Compression compression, int unit, int level) throws IOException {
    long size = Files.size(file);
    if (size == 0) {
      throw new IOException(file + " is empty");
    }
    long padded =
        (size + ChunkDigestTable.BLOCK_SIZE - 1)
            / ChunkDigestTable.BLOCK_SIZE
            * ChunkDigestTable.BLOCK_SIZE;
    Descriptor disk;
    ChunkDigestTable table;
    Digest uncompressed;
    Path scratch = out.newScratchFile(); // the output removes it if it is never committed
    if (compression == Compression.NONE) {
      Raw raw = raw(file, padded, scratch, unit);
      disk = out.putFile(scratch, MediaTypes.DISK, raw.digest());
      table = raw.table();
      uncompressed = raw.digest();
    } else {
      BlobCompressor.Compressed c = BlobCompressor.compress(file, padded, scratch, unit, level);
      Descriptor d = out.putFile(scratch, MediaTypes.DISK_ZSTD, c.digest());
      disk =
          new Descriptor(
              MediaTypes.DISK_ZSTD,
              d.digest(),
              d.size(),
              c.descriptor(MediaTypes.DISK_ZSTD).annotations(),
              null);
      table = c.table();
      uncompressed = c.uncompressedDigest();
    }
    Descriptor t = out.putBytes(table.encode(), MediaTypes.CHUNK_DIGESTS);
    Descriptor config =
        out.putBytes(
            LazyManifests.minimalConfigWithDiffIds(
                List.of(uncompressed.toString(), t.digest().toString())),
            MediaTypes.OCI_CONFIG);
    List<Descriptor> layers = List.of(DiskImage.dataLayer(disk, t), DiskImage.tableLayer(t, disk));
    Descriptor m =
        out.putBytes(
            Json.write(DiskImage.manifest(config, layers, size, null)), MediaTypes.OCI_MANIFEST);
    return new Imported(m, layers.get(0), layers.get(1), size);
  }

  private record Raw(Digest digest, ChunkDigestTable table) {}

  /**
   * The disk copied to {@code scratch}, padded, with its version 1 table of {@code unit} chunks.
   */
  private static Raw raw(Path file, long padded, Path scratch, int unit) throws IOException {
    Files.copy(file, scratch, StandardCopyOption.REPLACE_EXISTING);
    try (FileChannel ch =
        FileChannel.open(scratch, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      if (ch.size() < padded) {
        ch.write(ByteBuffer.allocate((int) (padded - ch.size())), ch.size());
      }
      ChunkDigestTable.Builder b = new ChunkDigestTable.Builder(Compression.NONE);
      MessageDigest whole = Digest.sha256();
      ByteBuffer buf = ByteBuffer.allocateDirect(unit);
      for (long pos = 0; pos < padded; pos += unit) {
        int len = (int) Math.min(unit, padded - pos);
        buf.clear().limit(len);
        while (buf.hasRemaining()) {
          if (ch.read(buf, pos + buf.position()) < 0) {
            throw new EOFException(file + " shrank while it was read");
          }
        }
        buf.flip();
        whole.update(buf.duplicate());
        MessageDigest chunk = Digest.sha256();
        chunk.update(buf);
        b.add(len, chunk.digest());
      }
      return new Raw(new Digest(HexFormat.of().formatHex(whole.digest())), b.build());
    }
  }
}

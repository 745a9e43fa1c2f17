package dev.lazypull.pack;

import dev.lazypull.compress.Compression;
import dev.lazypull.compress.ZstdCodec;
import dev.lazypull.erofs.ErofsNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * {@code lazypull pack}: a directory, or a tar / tar.gz / tar.zst file, into a lazypull image
 * (bootstrap, data blobs, chunk digest tables) written to an {@link ImageOutput}.
 */
public final class Packer {
  public static final int DEFAULT_CHUNK_SIZE = 1 << 20;

  /**
   * @param chunkSize power of two, 4 KiB to 16 MiB
   * @param blobCap start a new data blob before its stored size exceeds this many bytes (0 = one
   *     blob)
   * @param mtime fixed mtime (seconds) for every inode, or null to keep the sources'
   * @param compression how data blobs store chunks ({@link Compression#ZSTD}: one zstd frame per
   *     chunk)
   * @param level the zstd level (ignored for {@link Compression#NONE})
   */
  public record Options(
      int chunkSize, long blobCap, int threads, Long mtime, Compression compression, int level) {
    /** Raw chunks (chunk digest tables version 1), as images were before compression existed. */
    public Options(int chunkSize, long blobCap, int threads, Long mtime) {
      this(chunkSize, blobCap, threads, mtime, Compression.NONE, ZstdCodec.DEFAULT_LEVEL);
    }
  }

  private Packer() {}

  public static ImageBuilder.Built pack(Path src, ImageOutput out, Options o, Progress progress)
      throws IOException {
    Path real = src.toRealPath();
    try (ChunkStore store =
        new ChunkStore(
            out, o.chunkSize(), o.blobCap(), o.threads(), o.compression(), o.level(), progress)) {
      ErofsNode root;
      if (Files.isDirectory(real)) {
        progress.stage("scanning " + src);
        root =
            DirectorySource.read(real.toString().getBytes(StandardCharsets.UTF_8), store, progress);
      } else {
        progress.stage("reading tar " + src);
        TarApplier applier = new TarApplier(store, progress);
        try (InputStream in = Decompression.open(Files.newInputStream(real))) {
          applier.apply(in, src.toString(), 1, false);
        }
        root = applier.root();
      }
      List<ChunkStore.StoredBlob> blobs = store.finish();
      return ImageBuilder.finish(
          root, blobs, o.chunkSize(), o.mtime(), out, Map.of(), null, progress);
    }
  }
}

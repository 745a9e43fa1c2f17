package dev.lazypull.erofs;

import java.io.IOException;
import java.util.HashSet;
import java.util.Set;

/**
 * What a bootstrap holds, from a full walk: inode counts by type, logical file bytes, and chunk
 * statistics.
 *
 * @param inodes distinct inodes reached (hard links once)
 * @param paths names reached, the root included (hard links once per name)
 * @param chunks chunk indexes that point at data (holes excluded), over distinct files
 * @param uniqueChunks distinct (device, block) chunk locations
 * @param holes chunk indexes that are holes
 * @param compressedFiles regular files compressed by EROFS itself (mkfs.erofs -z), over distinct
 *     files
 * @param compressedStoredBytes the stored bytes of those files' physical clusters
 */
public record ImageSummary(
    long inodes,
    long paths,
    long directories,
    long regularFiles,
    long symlinks,
    long otherFiles,
    long fileBytes,
    long chunks,
    long uniqueChunks,
    long holes,
    int chunkSize,
    long compressedFiles,
    long compressedStoredBytes) {

  /** Chunks referenced per chunk stored: 1.0 when nothing was deduplicated. */
  public double dedupRatio() {
    return uniqueChunks == 0 ? 1.0 : (double) chunks / uniqueChunks;
  }

  public static ImageSummary of(ErofsReader reader) throws IOException {
    Set<Long> seen = new HashSet<>();
    Set<Long> locations = new HashSet<>();
    long[] c = new long[11];
    int[] chunkBits = {0};
    reader.walk(
        (path, inode) -> {
          c[0]++;
          if (!seen.add(inode.nid())) {
            return;
          }
          switch (inode.type()) {
            case DIRECTORY:
              c[1]++;
              break;
            case REGULAR:
              c[2]++;
              c[4] += inode.size();
              if (inode.record().layout() == InodeRecord.CHUNK_BASED) {
                chunkBits[0] = Math.max(chunkBits[0], reader.chunkBits(inode));
                reader.chunks(
                    inode,
                    ch -> {
                      if (ch.isHole()) {
                        c[6]++;
                      } else {
                        c[5]++;
                        locations.add(((long) ch.device() << 32) | ch.blkaddr());
                      }
                    });
              } else if (ErofsReader.isCompressed(inode.record())) {
                c[9]++;
                reader.forEachDataExtent(inode, e -> c[10] += e.length());
              }
              break;
            case SYMLINK:
              c[3]++;
              break;
            default:
              c[7]++;
          }
        });
    return new ImageSummary(
        seen.size(),
        c[0],
        c[1],
        c[2],
        c[3],
        c[7],
        c[4],
        c[5],
        locations.size(),
        c[6],
        chunkBits[0] == 0 ? 0 : 1 << chunkBits[0],
        c[9],
        c[10]);
  }
}

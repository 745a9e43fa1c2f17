package dev.lazypull.prefetch;

import dev.lazypull.erofs.ByteSource;
import dev.lazypull.erofs.ErofsReader;
import dev.lazypull.erofs.FileType;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Which byte ranges of which device hold the files matching some globs: walks the bootstrap (EROFS
 * reader) and maps each matching regular file to its chunks (device k, {@code blkaddr × block
 * size}) or, for flat files, to its blocks in the bootstrap itself. Used by {@code lazypull
 * prefetch --path} (through the daemon, and standalone into the NBD cache).
 */
public final class PathRanges {
  /** Largest bootstrap read whole to resolve paths (metadata only: ~20 MiB for 70,000 files). */
  public static final long MAX_BOOTSTRAP_BYTES = 256L << 20;

  /**
   * Ranges per device id (0 = bootstrap), as [offset, length] pairs, plus how many files matched.
   */
  public record Result(Map<Integer, List<long[]>> byDevice, int files, long bytes) {}

  private PathRanges() {}

  /**
   * @param globs {@code java.nio} glob patterns matched against absolute image paths ("/usr/bin/*",
   *     "/etc/**")
   */
  public static Result of(ByteSource bootstrap, List<String> globs) throws IOException {
    List<PathMatcher> matchers = new ArrayList<>();
    for (String g : globs) {
      matchers.add(
          FileSystems.getDefault().getPathMatcher("glob:" + (g.startsWith("/") ? g : "/" + g)));
    }
    ErofsReader reader = ErofsReader.open(bootstrap);
    int blockSize = reader.header().superblock().blockSize();
    Map<Integer, List<long[]>> out = new HashMap<>();
    int[] files = {0};
    long[] bytes = {0};
    reader.walk(
        (raw, inode) -> {
          if (inode.type() != FileType.REGULAR || inode.size() == 0) {
            return;
          }
          Path p = Path.of("/" + new String(raw, StandardCharsets.UTF_8));
          if (matchers.stream().noneMatch(m -> m.matches(p))) {
            return;
          }
          files[0]++;
          // every layout, EROFS-compressed inodes included: the device ranges the file's data
          // occupies
          reader.forEachDataExtent(
              inode,
              e -> {
                add(out, e.device(), e.offset(), e.length());
                bytes[0] += e.length();
              });
        });
    return new Result(out, files[0], bytes[0]);
  }

  private static void add(Map<Integer, List<long[]>> out, int device, long offset, long length) {
    List<long[]> list = out.computeIfAbsent(device, k -> new ArrayList<>());
    long[] last = list.isEmpty() ? null : list.get(list.size() - 1);
    if (last != null && last[0] + last[1] == offset) {
      last[1] += length; // contiguous with the previous range: extend it
    } else {
      list.add(new long[] {offset, length});
    }
  }
}

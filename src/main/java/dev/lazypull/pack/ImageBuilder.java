package dev.lazypull.pack;

import dev.lazypull.erofs.ErofsNode;
import dev.lazypull.erofs.ErofsWriter;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Finishes an image once its tree is built and its file data stored: fixes timestamps, writes the
 * bootstrap, the chunk digest tables, the config and the manifest to an {@link ImageOutput}, and
 * publishes it.
 *
 * <p>Reproducible: nothing depends on the clock, the host or thread timing. The superblock build
 * time (the mtime of every compact inode) is {@code --mtime} when given, else the most common mtime
 * in the tree (ties: the earliest), which keeps most inodes compact for trees unpacked from tars.
 */
public final class ImageBuilder {
  /** What was built. */
  public record Built(
      Descriptor manifest,
      Manifest content,
      Descriptor bootstrap,
      List<ChunkStore.StoredBlob> blobs,
      long inodes) {}

  private ImageBuilder() {}

  /**
   * @param fixedMtime every inode's mtime (seconds) or null to keep the sources'
   * @param configFor builds the image config from the diff_ids of the final layers (the sha256 of
   *     each layer's uncompressed content, in layer order; null: a minimal config)
   */
  public static Built finish(
      ErofsNode root,
      List<ChunkStore.StoredBlob> blobs,
      int chunkSize,
      Long fixedMtime,
      ImageOutput out,
      Map<String, String> annotations,
      Function<List<String>, byte[]> configFor,
      Progress progress)
      throws IOException {
    if (fixedMtime != null) {
      forEachNode(
          root,
          n -> {
            n.mtimeSec = fixedMtime;
            n.mtimeNsec = 0;
          });
    }
    long[] buildTime = mostCommonMtime(root);
    List<ErofsWriter.Device> devices = new ArrayList<>();
    for (ChunkStore.StoredBlob b : blobs) {
      devices.add(new ErofsWriter.Device(b.blob().digest().hex(), b.deviceSize()));
    }
    Path scratch = out.newScratchFile();
    ErofsWriter.Result result;
    Digest bootDigest;
    try (FileChannel ch =
        FileChannel.open(scratch, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      result =
          ErofsWriter.write(
              root,
              new ErofsWriter.Options(
                  Integer.numberOfTrailingZeros(chunkSize), buildTime[0], (int) buildTime[1]),
              devices,
              ch);
      bootDigest = sha256(ch);
    }
    Descriptor boot = out.putFile(scratch, MediaTypes.EROFS_BOOTSTRAP, bootDigest);
    progress.stage(
        "wrote bootstrap "
            + boot.digest()
            + " ("
            + result.inodes()
            + " inodes, "
            + boot.size()
            + " bytes)");
    List<Descriptor> blobDescs = new ArrayList<>();
    List<Descriptor> tables = new ArrayList<>();
    for (ChunkStore.StoredBlob b : blobs) {
      blobDescs.add(b.blob());
      tables.add(out.putBytes(b.table().encode(), MediaTypes.CHUNK_DIGESTS));
    }
    List<String> diffIds = new ArrayList<>();
    diffIds.add(boot.digest().toString());
    for (ChunkStore.StoredBlob b : blobs) {
      diffIds.add(b.uncompressedDigest().toString());
    }
    for (Descriptor t : tables) {
      diffIds.add(t.digest().toString());
    }
    byte[] config =
        configFor != null
            ? configFor.apply(diffIds)
            : LazyManifests.minimalConfigWithDiffIds(diffIds);
    Descriptor configDesc = out.putBytes(config, MediaTypes.OCI_CONFIG);
    Map<String, String> ann = new LinkedHashMap<>(annotations);
    ann.put(LazyManifests.ANNOTATION_CHUNK_SIZE, Integer.toString(chunkSize));
    Manifest manifest = LazyManifests.manifest(configDesc, boot, blobDescs, tables, ann);
    Descriptor m = out.putBytes(Json.write(manifest), MediaTypes.OCI_MANIFEST);
    out.publish(m);
    progress.stage("published " + m.digest() + " to " + out.describe());
    return new Built(m, manifest, boot, blobs, result.inodes());
  }

  private static Digest sha256(FileChannel ch) throws IOException {
    MessageDigest md = Digest.sha256();
    ch.position(0);
    InputStream in = Channels.newInputStream(ch);
    byte[] buf = new byte[1 << 16];
    int n;
    while ((n = in.read(buf)) > 0) {
      md.update(buf, 0, n);
    }
    return new Digest(HexFormat.of().formatHex(md.digest()));
  }

  /** {seconds, nanoseconds} of the most common mtime; ties go to the earliest. */
  public static long[] mostCommonMtime(ErofsNode root) {
    Map<List<Long>, Integer> counts = new HashMap<>();
    forEachNode(root, n -> counts.merge(List.of(n.mtimeSec, (long) n.mtimeNsec), 1, Integer::sum));
    List<Long> best = null;
    int bestCount = -1;
    for (Map.Entry<List<Long>, Integer> e : counts.entrySet()) {
      List<Long> k = e.getKey();
      int c = e.getValue();
      if (c > bestCount
          || (c == bestCount
              && (k.get(0) < best.get(0)
                  || (k.get(0).equals(best.get(0)) && k.get(1) < best.get(1))))) {
        best = k;
        bestCount = c;
      }
    }
    return new long[] {best.get(0), best.get(1)};
  }

  /** Visits every distinct node once (hard links once). */
  public static void forEachNode(ErofsNode root, Consumer<ErofsNode> visit) {
    Map<ErofsNode, Boolean> seen = new IdentityHashMap<>();
    ArrayDeque<ErofsNode> todo = new ArrayDeque<>();
    todo.push(root);
    seen.put(root, true);
    while (!todo.isEmpty()) {
      ErofsNode n = todo.pop();
      visit.accept(n);
      for (ErofsNode c : n.children().values()) {
        if (seen.put(c, true) == null) {
          todo.push(c);
        }
      }
    }
  }
}

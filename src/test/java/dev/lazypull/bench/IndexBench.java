package dev.lazypull.bench;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.erofs.ByteSource;
import dev.lazypull.erofs.ErofsReader;
import dev.lazypull.erofs.FileType;
import dev.lazypull.image.ChunkDigestTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.index.IndexArtifact;
import dev.lazypull.index.IndexBuilder;
import dev.lazypull.index.IndexedBlobSource;
import dev.lazypull.index.SpanCache;
import dev.lazypull.oci.OciLayoutBlobSource;
import dev.lazypull.oci.OciLayoutWriter;
import dev.lazypull.pack.OciLayoutOutput;
import dev.lazypull.pack.Progress;
import dev.lazypull.testing.Requirements;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Side-car indexes on real layers ({@code -Dbench.trees=DIR,DIR}, default {@code /usr/lib/python3}
 * and the JDK: each tarred and gzipped at level 6 by tar(1) and gzip(1) into a one-layer image):
 *
 * <ul>
 *   <li>index size ÷ compressed layer size at the default span, part by part (bootstrap, zinfo,
 *       span table, device map, digest table, manifest);
 *   <li>{@code lazypull index} speed (the whole build: inflate, checkpoints, tar, tree, device
 *       digests, bootstrap) against {@code gzip -dc > /dev/null} of the same file: wall time and
 *       CPU time, median of 3 alternated runs;
 *   <li>a cold start reading 5 % of the files: compressed layer bytes moved ÷ the layer's size, as
 *       the fetch core would move them (whole digest entries, each once; no read-ahead), for files
 *       taken as whole packages (subtrees three levels down: what a program start touches, the
 *       modules of a few packages), directory by directory (random directories anywhere), and
 *       uniformly at random (the worst case);
 *   <li>read amplification per span size: the same, plus the index size and one small file's cost.
 * </ul>
 *
 * Prints the figures side by side; asserts nothing. Run: {@code mvn -Pbench test
 * -Dtest=IndexBench}.
 */
@Tag("bench")
class IndexBench {
  private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

  /** A one-layer image in a layout, and the layer file. */
  private record Image(Path layout, Path gz, Descriptor subject, Manifest manifest) {}

  private static Image image(Path tree, Path work) throws Exception {
    Path gz = work.resolve("layer.tar.gz");
    Requirements.run(
        "bash",
        "-c",
        "tar -C '"
            + tree.getParent()
            + "' -cf - '"
            + tree.getFileName()
            + "' 2>/dev/null | gzip -6 > '"
            + gz
            + "'");
    Path layout = work.resolve("layout");
    OciLayoutWriter w = new OciLayoutWriter(layout);
    Descriptor layer = w.putBlob(gz, MediaTypes.OCI_LAYER_TAR_GZIP);
    Descriptor config = w.putBlob(LazyManifests.minimalConfig(List.of()), MediaTypes.OCI_CONFIG);
    Manifest m = new Manifest(2, MediaTypes.OCI_MANIFEST, null, config, List.of(layer), Map.of());
    Descriptor md = w.putBlob(Json.write(m), MediaTypes.OCI_MANIFEST);
    return new Image(layout, gz, md, m);
  }

  private static IndexBuilder.Result index(Image img, IndexBuilder.Options o, String tag)
      throws IOException {
    OciLayoutBlobSource blobs = new OciLayoutBlobSource(img.layout());
    try (OciLayoutOutput out = new OciLayoutOutput(img.layout(), tag)) {
      return IndexBuilder.build(
          "bench",
          img.subject(),
          img.manifest().layers(),
          l ->
              new BufferedInputStream(
                  Channels.newInputStream(blobs.openRange(l, 0, l.size())), 1 << 16),
          o,
          out,
          Progress.silent());
    }
  }

  @Test
  void indexSizeSpeedColdStartAndAmplification() throws Exception {
    Requirements.requireTool("gzip");
    Requirements.requireTool("tar");
    String trees =
        System.getProperty("bench.trees", "/usr/lib/python3,/usr/lib/jvm/java-17-openjdk-amd64");
    for (String t : trees.split(",")) {
      Path work = Files.createTempDirectory("index-bench");
      try {
        run(Path.of(t), work);
      } finally {
        Requirements.run("rm", "-rf", work.toString());
      }
    }
  }

  private void run(Path tree, Path work) throws Exception {
    Image img = image(tree, work);
    long compressed = Files.size(img.gz());
    Requirements.run("bash", "-c", "cat '" + img.gz() + "' > /dev/null");
    long[] gzipWall = new long[3];
    long[] gzipCpu = new long[3];
    long[] idxWall = new long[3];
    long[] idxCpu = new long[3];
    IndexBuilder.Result r = null;
    for (int i = 0; i < 3; i++) {
      String times =
          Requirements.run(
              "bash",
              "-c",
              "TIMEFORMAT='%R %U %S'; { time gzip -dc '" + img.gz() + "' > /dev/null; } 2>&1");
      String[] f = times.trim().split("\\s+");
      gzipWall[i] = (long) (Double.parseDouble(f[0]) * 1e9);
      gzipCpu[i] = (long) ((Double.parseDouble(f[1]) + Double.parseDouble(f[2])) * 1e9);
      long c0 = THREADS.getCurrentThreadCpuTime();
      long w0 = System.nanoTime();
      r = index(img, IndexBuilder.Options.defaults(), "run" + i);
      idxWall[i] = System.nanoTime() - w0;
      idxCpu[i] = THREADS.getCurrentThreadCpuTime() - c0;
    }
    Arrays.sort(gzipWall);
    Arrays.sort(gzipCpu);
    Arrays.sort(idxWall);
    Arrays.sort(idxCpu);
    long tar = r.layers().get(0).tarSize();
    IndexArtifact.Device d = r.layers().get(0).device();
    System.out.printf(
        Locale.ROOT,
        "%n== %s: %d files, tar %,d bytes, gzip -6 %,d bytes (%.2fx)%n",
        tree,
        r.files(),
        tar,
        compressed,
        (double) tar / compressed);
    System.out.printf(
        Locale.ROOT,
        "index at 4 MiB spans: %,d bytes = %.2f%% of the compressed layer (%.2f%% of the "
            + "tar): bootstrap %,d, zinfo %,d (%d checkpoints), span table %,d, device map %,d, digest table %,d, "
            + "manifest %,d%n",
        r.indexBytes(),
        100.0 * r.indexBytes() / compressed,
        100.0 * r.indexBytes() / tar,
        r.bootstrap().size(),
        d.zinfo().size(),
        r.layers().get(0).checkpoints(),
        d.spans().size(),
        d.map().size(),
        d.table().size(),
        r.manifestBytes().length);
    System.out.printf(
        Locale.ROOT,
        "speed (median of 3): gzip -dc %.0f ms wall / %.0f ms CPU = %.0f MB/s of tar; "
            + "lazypull index %.0f ms wall / %.0f ms CPU = %.0f MB/s; index ÷ gzip speed: %.2fx wall, %.2fx CPU%n",
        gzipWall[1] / 1e6,
        gzipCpu[1] / 1e6,
        tar / (gzipWall[1] / 1e3),
        idxWall[1] / 1e6,
        idxCpu[1] / 1e6,
        tar / (idxWall[1] / 1e3),
        (double) gzipWall[1] / idxWall[1],
        (double) gzipCpu[1] / idxCpu[1]);
    System.out.println(
        "span size | index % of layer | one small file: layer bytes | 5 % of files as whole "
            + "packages | 5 % of files by directory | 5 % of files at random");
    for (long span : new long[] {256 << 10, 1 << 20, 4 << 20, 16 << 20}) {
      IndexBuilder.Result s =
          index(img, IndexBuilder.Options.defaults().withSpanSize(span), "span" + span);
      long[] cold = coldStart(img, s);
      System.out.printf(
          Locale.ROOT,
          "%5d KiB | %6.2f %% | %,10d (%.2f %%) | %6.2f %% | %6.2f %% | %6.2f %%%n",
          span >> 10,
          100.0 * s.indexBytes() / compressed,
          cold[0],
          100.0 * cold[0] / compressed,
          100.0 * cold[1] / compressed,
          100.0 * cold[2] / compressed,
          100.0 * cold[3] / compressed);
    }
  }

  /** A blob source that counts the bytes read of one blob. */
  private static final class Counting implements BlobSource {
    final BlobSource base;
    final Digest counted;
    final AtomicLong bytes = new AtomicLong();

    Counting(BlobSource base, Digest counted) {
      this.base = base;
      this.counted = counted;
    }

    @Override
    public ReadableByteChannel openRange(Descriptor blob, long offset, long length)
        throws IOException {
      if (blob.digest().equals(counted)) {
        bytes.addAndGet(length);
      }
      return base.openRange(blob, offset, length);
    }

    @Override
    public String describe() {
      return "counting";
    }
  }

  /**
   * {one small file, 5 % as whole packages, 5 % by directory, 5 % at random}: layer bytes moved,
   * each from a cold start.
   */
  private static long[] coldStart(Image img, IndexBuilder.Result r) throws IOException {
    Descriptor layer = img.manifest().layers().get(0);
    LazyImage li =
        IndexArtifact.parse(r.manifestBytes(), img.subject(), img.manifest().layers(), "bench")
            .image("bench");
    OciLayoutBlobSource local = new OciLayoutBlobSource(img.layout());
    Descriptor dev = li.blobs().get(0);
    ChunkDigestTable table =
        ChunkDigestTable.decode(
            local.read(li.chunkTable(0), 0, (int) li.chunkTable(0).size()), dev);
    ErofsReader er =
        ErofsReader.open(ByteSource.of(local.read(li.bootstrap(), 0, (int) li.bootstrap().size())));
    Map<String, List<ErofsReader.Extent>> files = new HashMap<>();
    Map<String, List<String>> dirs = new HashMap<>();
    er.walk(
        (path, inode) -> {
          if (inode.type() == FileType.REGULAR && inode.size() > 0) {
            String p = new String(path, StandardCharsets.UTF_8);
            files.put(p, er.dataExtents(inode));
            dirs.computeIfAbsent(
                    p.contains("/") ? p.substring(0, p.lastIndexOf('/')) : "",
                    k -> new ArrayList<>())
                .add(p);
          }
        });
    List<String> all = new ArrayList<>(files.keySet());
    Collections.sort(all);
    int want = Math.max(1, all.size() / 20);
    Random rnd = new Random(5);
    List<String> random = new ArrayList<>(all);
    Collections.shuffle(random, rnd);
    random = random.subList(0, want);
    List<String> byDir = new ArrayList<>();
    List<String> dirNames = new ArrayList<>(dirs.keySet());
    Collections.sort(dirNames);
    Collections.shuffle(dirNames, rnd);
    for (String dn : dirNames) {
      if (byDir.size() >= want) {
        break;
      }
      for (String f : dirs.get(dn)) {
        if (byDir.size() < want) {
          byDir.add(f);
        }
      }
    }
    // whole packages: subtrees three levels down (python3/dist-packages/NAME), as a program start
    // imports a few
    Map<String, List<String>> trees = new TreeMap<>();
    for (String f : all) {
      String[] c = f.split("/");
      trees
          .computeIfAbsent(
              String.join("/", Arrays.copyOf(c, Math.min(3, c.length - 1))), k -> new ArrayList<>())
          .add(f);
    }
    List<String> treeNames = new ArrayList<>(trees.keySet());
    Collections.shuffle(treeNames, rnd);
    List<String> bySubtree = new ArrayList<>();
    for (String tn : treeNames) {
      if (bySubtree.size() >= want) {
        break;
      }
      for (String f : trees.get(tn)) {
        if (bySubtree.size() < want) {
          bySubtree.add(f);
        }
      }
    }
    String small =
        all.stream()
            .filter(p -> files.get(p).stream().mapToLong(ErofsReader.Extent::length).sum() < 8192)
            .skip(all.size() / 3)
            .findFirst()
            .orElse(all.get(0));
    List<List<String>> sets = List.of(List.of(small), bySubtree, byDir, random);
    long[] out = new long[sets.size()];
    for (int k = 0; k < sets.size(); k++) {
      Counting counting = new Counting(local, layer.digest());
      IndexedBlobSource src =
          new IndexedBlobSource(counting, null, new SpanCache(SpanCache.DEFAULT_BUDGET));
      Set<Integer> fetched = new HashSet<>();
      for (String f : sets.get(k)) {
        for (ErofsReader.Extent e : files.get(f)) {
          for (int i = table.entryAt(e.offset());
              i <= table.entryAt(e.offset() + e.length() - 1);
              i++) {
            if (fetched.add(i)) {
              src.read(dev, table.offset(i), table.length(i));
            }
          }
        }
      }
      out[k] = counting.bytes.get();
    }
    return out;
  }
}

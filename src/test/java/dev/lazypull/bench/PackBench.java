package dev.lazypull.bench;

import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.VmHarness;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Wall time of `java -jar lazypull.jar pack TREE --output oci:…` (whole process, JVM start
 * included: bootstrap, data blob, digest tables, OCI layout) against `mkfs.erofs
 * --chunksize=1048576 --blobdev=BLOB BOOT TREE` on the same tree in the same run, page cache warm
 * for both, runs alternated, median of 5. Prints the ratio; asserts nothing. Tree: {@code
 * -Dbench.tree=DIR} (default /usr/lib/jvm, two JDKs, about 560 MiB). Run: {@code mvn -B -q package
 * -DskipTests && mvn -Pbench test -Dtest=PackBench}.
 */
@Tag("bench")
class PackBench {
  @Test
  void packVersusMkfsErofs() throws Exception {
    Path tree = Path.of(System.getProperty("bench.tree", "/usr/lib/jvm"));
    Requirements.requireTool("mkfs.erofs");
    Path jar = VmHarness.jar();
    Path work = Files.createTempDirectory("pack-bench");
    try {
      Requirements.run(
          "bash",
          "-c",
          "du -sh --apparent-size '"
              + tree
              + "'; find '"
              + tree
              + "' -type f -exec cat {} + > /dev/null");
      long[] mkfs = new long[5];
      long[] pack = new long[5];
      long blob = 0;
      for (int i = 0; i < 5; i++) {
        mkfs[i] =
            time(
                work,
                "mkfs.erofs",
                "--quiet",
                "--chunksize=1048576",
                "--blobdev=" + work.resolve("blob"),
                work.resolve("boot").toString(),
                tree.toString());
        blob = Files.size(work.resolve("blob"));
        pack[i] =
            time(
                work,
                "java",
                "-jar",
                jar.toString(),
                "pack",
                tree.toString(),
                "--output",
                "oci:" + work.resolve("layout-" + i));
        System.out.printf(
            Locale.ROOT,
            "run %d: mkfs.erofs %d ms, lazypull pack %d ms%n",
            i + 1,
            mkfs[i],
            pack[i]);
      }
      Arrays.sort(mkfs);
      Arrays.sort(pack);
      System.out.printf(
          Locale.ROOT,
          "%ntree %s, mkfs blob %d MiB, %d cores%n",
          tree,
          blob >> 20,
          Runtime.getRuntime().availableProcessors());
      System.out.printf(
          Locale.ROOT,
          "mkfs.erofs --chunksize=1048576 --blobdev: median %d ms (min %d, max %d)%n",
          mkfs[2],
          mkfs[0],
          mkfs[4]);
      System.out.printf(
          Locale.ROOT,
          "lazypull pack --output oci:   median %d ms (min %d, max %d)%n",
          pack[2],
          pack[0],
          pack[4]);
      System.out.printf(
          Locale.ROOT, "ratio pack / mkfs.erofs: %.2fx%n", (double) pack[2] / mkfs[2]);
    } finally {
      Requirements.run("rm", "-rf", work.toString());
    }
  }

  private static long time(Path work, String... cmd) throws IOException, InterruptedException {
    List<String> c = new ArrayList<>(List.of(cmd));
    Requirements.run(
        "bash",
        "-c",
        "rm -rf '" + work + "'/layout-* '" + work + "'/boot '" + work + "'/blob; sync");
    long t0 = System.nanoTime();
    Requirements.run(c.toArray(String[]::new));
    return (System.nanoTime() - t0) / 1_000_000;
  }
}

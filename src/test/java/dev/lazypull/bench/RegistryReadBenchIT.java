package dev.lazypull.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lazypull.cli.Main;
import dev.lazypull.image.LazyImage;
import dev.lazypull.oci.OciLayout;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Benchmark, not a test (prints, asserts only that the runs worked): in the QEMU guest, a cold
 * sequential read of a large file through a lazypull fscache mount backed by a docker-registry on
 * loopback, against {@code curl} downloading the same data blob from the same registry in the same
 * run. Prints time ratios and bytes fetched ÷ bytes read. Run: {@code mvn -Pbench verify
 * -Dit.test=RegistryReadBenchIT -Dtest=NoSuchTest -Dsurefire.failIfNoSpecifiedTests=false} (system
 * properties {@code bench.mib}, {@code bench.rounds}, {@code bench.variants} as {@code name|JVM
 * options|daemon flags;…}, {@code bench.reuse=true} to keep the prepared image).
 */
@Tag("bench")
class RegistryReadBenchIT {
  /** Default variants: the guest lib's C1-only JVM (as in the tests) and a fully tiered one. */
  static final String DEFAULT_VARIANTS =
      "c1|-XX:TieredStopAtLevel=1 -XX:+UseSerialGC|\n" + "tiered|-XX:+UseSerialGC|";

  @Test
  void coldSequentialReadVersusCurl() throws Exception {
    VmHarness.requireVm();
    Requirements.requireTool("mkfs.erofs");
    int mib = Integer.getInteger("bench.mib", 320);
    int rounds = Integer.getInteger("bench.rounds", 3);
    String variants = System.getProperty("bench.variants", DEFAULT_VARIANTS).replace(";", "\n");
    Path work = VmHarness.baseDir().resolve("target/vm-work/registry-bench");
    Path env = work.resolve("bench.env");
    if (!Boolean.getBoolean("bench.reuse") || !Files.exists(env)) {
      prepare(work, mib);
    }
    Files.writeString(work.resolve("rounds"), rounds + "\n");
    Files.writeString(work.resolve("variants"), variants + "\n");
    long fileBytes = (long) mib << 20;

    VmHarness.Run run =
        VmHarness.run(
            work,
            VmHarness.baseDir().resolve("src/test/vm/registry-bench.sh"),
            3000,
            work.toString());
    List<String> names =
        variants.lines().filter(l -> !l.isBlank()).map(l -> l.split("\\|", -1)[0]).toList();
    List<String> checks = new ArrayList<>();
    for (String n : names) {
      checks.add(n + "-daemon-ready");
      for (int r = 1; r <= rounds; r++) {
        checks.addAll(
            List.of(
                n + "-curl-" + r + "-ok",
                n + "-mount-" + r,
                n + "-read-" + r,
                n + "-no-failed-reads-" + r));
      }
    }
    run.assertPassed(checks.toArray(new String[0]));
    System.out.printf(
        Locale.ROOT,
        "%nregistry cold sequential read, %d MiB file, QEMU TCG guest (2 vCPU)%n",
        mib);
    System.out.printf(
        Locale.ROOT,
        "%-12s %-5s %8s %8s %10s %10s %9s %12s %6s %8s %15s %12s%n",
        "variant",
        "round",
        "curl ms",
        "lazy ms",
        "curl MiB/s",
        "lazy MiB/s",
        "lazy/curl",
        "fetched/read",
        "READs",
        "requests",
        "reg CPU c/l ms",
        "daemon CPU ms");
    for (String n : names) {
      for (int r = 1; r <= rounds; r++) {
        long curl = run.result(n + "-curl-" + r + "-ms");
        long lazy = run.result(n + "-lazypull-" + r + "-ms");
        double curlRate = run.result(n + "-curl-" + r + "-bytes") / 1048576.0 / (curl / 1000.0);
        double lazyRate = fileBytes / 1048576.0 / (lazy / 1000.0);
        System.out.printf(
            Locale.ROOT,
            "%-12s %-5d %8d %8d %10.1f %10.1f %8.2fx %12.3f %6d %8d %7d/%-7d %12d%n",
            n,
            r,
            curl,
            lazy,
            curlRate,
            lazyRate,
            lazyRate / curlRate,
            (double) run.result(n + "-lazypull-" + r + "-fetched") / fileBytes,
            run.result(n + "-lazypull-" + r + "-reads"),
            run.result(n + "-lazypull-" + r + "-requests"),
            run.result(n + "-curl-" + r + "-registry-cpu-ms"),
            run.result(n + "-lazypull-" + r + "-registry-cpu-ms"),
            run.result(n + "-lazypull-" + r + "-daemon-cpu-ms"));
      }
    }
  }

  /** Image with one {@code mib} MiB file, pushed into a registry storage tree the guest serves. */
  private static void prepare(Path work, int mib) throws Exception {
    work = VmHarness.workDir("registry-bench");
    Path tree = Files.createDirectories(work.resolve("tree"));
    TestTrees.write(tree.resolve("big.bin"), (long) mib << 20, new Random(1));
    // data after the file in the same blob, so read-ahead past the file's end would show in
    // fetched/read
    TestTrees.write(tree.resolve("zz-after.bin"), 64L << 20, new Random(2));
    Requirements.run(
        "mkfs.erofs",
        "--quiet",
        "-T0",
        "--chunksize=1048576",
        "--blobdev=" + work.resolve("img.blob"),
        work.resolve("img.erofs").toString(),
        tree.toString());
    Files.delete(tree.resolve("big.bin"));
    Files.delete(tree.resolve("zz-after.bin"));
    String layout = "oci:" + work.resolve("layout") + ":v1";
    assertEquals(
        0,
        Main.run(
            "import",
            work.resolve("img.erofs").toString(),
            work.resolve("img.blob").toString(),
            "--output",
            layout));
    LazyImage image = new OciLayout(work.resolve("layout"), "v1").resolve();
    Files.delete(work.resolve("img.blob"));
    Files.writeString(work.resolve("lazypull.toml"), "# the benchmark's daemon: defaults\n");
    try (DockerRegistryFixture seed =
        DockerRegistryFixture.builder(work.resolve("seed"))
            .storage(work.resolve("registry-storage"))
            .start()) {
      assertEquals(
          0,
          Main.run(
              "copy",
              "--plain-http",
              "-q",
              "--config",
              work.resolve("lazypull.toml").toString(),
              layout,
              seed.host() + "/bench/big:v1"));
    }
    Requirements.run("rm", "-rf", work.resolve("layout").toString());
    Files.writeString(work.resolve("registry.yml"), VmHarness.guestRegistryConfig(5000, false, ""));
    Files.writeString(
        work.resolve("bench.env"),
        String.format(
            Locale.ROOT,
            "IMAGE=127.0.0.1:5000/bench/big:v1%nREPO=bench/big%nBLOB=%s%nFILE=big.bin%nFILE_BYTES=%d%n"
                + "ROUNDS=$(cat \"$W/rounds\")%n",
            image.blobs().get(0).digest(),
            (long) mib << 20));
  }
}

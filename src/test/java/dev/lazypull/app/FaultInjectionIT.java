package dev.lazypull.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageRegistrar;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.cli.Main;
import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.fetch.FetchStats;
import dev.lazypull.image.Descriptor;
import dev.lazypull.registry.CredentialStore;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import dev.lazypull.registry.RegistryImageSource;
import dev.lazypull.registry.RetryPolicy;
import dev.lazypull.registry.Sleeper;
import dev.lazypull.sys.Posix;
import dev.lazypull.testing.DaemonHarness;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.FakeKernel;
import dev.lazypull.testing.FakeKernel.FakeObject;
import dev.lazypull.testing.FakeKernel.Outcome;
import dev.lazypull.testing.FaultProxy;
import dev.lazypull.testing.FaultProxy.Fault;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fault acceptance test: cold READs through the real daemon ({@link FscacheFrontend}
 * with the {@link FakeKernel}, which checks every reply against real O_DIRECT sparse backing files)
 * from the real {@code docker-registry} behind a {@link FaultProxy} that damages blob responses on
 * a seeded random schedule — and takes the registry down altogether for a stretch. Every READ must
 * be answered within its deadline (plus a margin for a loaded machine), every answer with data must
 * have exactly the blob's bytes, a second image served by the same daemon from the registry
 * directly keeps being served meanwhile, and reads succeed again once the faults stop.
 */
class FaultInjectionIT {
  private static final int CHUNK = 64 << 10;
  private static final Duration DEADLINE = Duration.ofMillis(1000);

  /** Allowance for scheduling on a loaded 2-core CI machine; a real hang is unbounded. */
  private static final long MARGIN_MS = 1000;

  private static final int WORKERS = 8;
  private static final int FETCH_THREADS = 4;

  @TempDir Path tmp;

  @Test
  void thousandFaultInjectedColdReadsOfAPackedImageNeverHangNeverLieAndRecover() throws Exception {
    Requirements.requireTool("docker-registry");
    Path tree = Files.createDirectories(tmp.resolve("tree"));
    TestTrees.write(tree.resolve("data.bin"), (20 << 20) + 777, new Random(11));
    Path layout = tmp.resolve("layout");
    assertEquals(
        0,
        Main.run(
            "pack",
            tree.toString(),
            "--chunk-size",
            "64K",
            "--compression",
            "none",
            "--output",
            "oci:" + layout + ":v1")); // raw chunks: the readers compare against the blob as stored
    Figures f =
        run(
            "packed image (chunk digest tables), every fault incl. flipped bits, registry down for a while",
            layout,
            true,
            Fault.all(),
            1000,
            0xFA17L,
            true);
    assertTrue(
        f.verifiedChunks > 0, "the packed image's chunks were verified against its digest table");
    assertTrue(
        f.faults.get(Fault.CORRUPT) > 0 && f.integrityMismatches > 0,
        "corrupted bytes were injected and caught by the digest table: " + f.faults);
  }

  @Test
  void anImageWithoutDigestTablesGetsNoWrongBytesUnderDetectableFaults() throws Exception {
    Requirements.requireTool("docker-registry");
    Requirements.requireTool("mkfs.erofs");
    Path tree = Files.createDirectories(tmp.resolve("tree"));
    TestTrees.write(tree.resolve("data.bin"), (12 << 20) + 4321, new Random(12));
    Requirements.run(
        "mkfs.erofs",
        "--quiet",
        "-T0",
        "--chunksize=65536",
        "--blobdev=" + tmp.resolve("img.blob"),
        tmp.resolve("img.erofs").toString(),
        tree.toString());
    Path layout = tmp.resolve("layout");
    assertEquals(
        0,
        Main.run(
            "import",
            tmp.resolve("img.erofs").toString(),
            tmp.resolve("img.blob").toString(),
            "--compression",
            "none",
            "--output",
            "oci:" + layout + ":v1"));
    run(
        "imported mkfs.erofs image (no digest tables), every fault but flipped bits",
        layout,
        false,
        Fault.detectableWithoutDigests(),
        300,
        0xB10BL,
        false);
  }

  // ---- the run
  // -------------------------------------------------------------------------------------------

  /** What one run measured. */
  record Figures(
      int reads,
      long data,
      long eio,
      long hangs,
      long wrongBytes,
      long maxReadMs,
      long maxWaitMs,
      long p99WaitMs,
      long followUps,
      long bytesChecked,
      long downData,
      long downEio,
      long steadyReads,
      long steadyEio,
      long steadyMaxMs,
      int recoveryOk,
      int recoveryReads,
      long recoveryFirstMs,
      Map<Fault, Long> faults,
      long verifiedChunks,
      long integrityMismatches,
      long seconds) {
    void print(String what) {
      System.out.printf(
          "fault injection, %s: %d cold READs in %d s: %d with data, %d EIO; hangs %d (slowest READ "
              + "answered in %d ms, deadline %d ms; reader waits max %d ms, p99 %d ms, %d follow-up READs); wrong "
              + "bytes %d (%d bytes compared); %s; other image: %d READs, %d EIO, "
              + "max %d ms; after the faults %d/%d READs served, the first in %d ms; chunks verified (both images) %d, "
              + "digest mismatches %d; faults injected %s%n",
          what,
          reads,
          seconds,
          data,
          eio,
          hangs,
          maxReadMs,
          DEADLINE.toMillis(),
          maxWaitMs,
          p99WaitMs,
          followUps,
          wrongBytes,
          bytesChecked,
          downData + downEio == 0
              ? "registry not taken down"
              : "while the registry was down " + downData + " READs served, " + downEio + " EIO",
          steadyReads,
          steadyEio,
          steadyMaxMs,
          recoveryOk,
          recoveryReads,
          recoveryFirstMs,
          verifiedChunks,
          integrityMismatches,
          faults);
    }
  }

  /**
   * Serves the image in {@code layout} (with or without {@code digestTables}) from a registry
   * behind a fault proxy injecting {@code faults} into half of the blob requests, and another image
   * from the registry directly, to {@code reads} cold READs by {@link #WORKERS} concurrent readers;
   * then stops the faults and reads again. Prints and asserts the figures.
   */
  private Figures run(
      String what,
      Path layout,
      boolean digestTables,
      Set<Fault> faults,
      int reads,
      long seed,
      boolean withDown)
      throws Exception {
    long t0 = System.nanoTime();
    Path otherTree = Files.createDirectories(tmp.resolve("other-tree"));
    TestTrees.write(otherTree.resolve("other.bin"), (6 << 20) + 99, new Random(seed));
    Path otherLayout = tmp.resolve("other-layout");
    assertEquals(
        0,
        Main.run(
            "pack",
            otherTree.toString(),
            "--chunk-size",
            "64K",
            "--compression",
            "none",
            "--output",
            "oci:" + otherLayout + ":v1"));
    try (DockerRegistryFixture registry =
            DockerRegistryFixture.builder(tmp.resolve("registry")).start();
        FaultProxy proxy = FaultProxy.in(registry, seed)) {
      assertEquals(
          0,
          Main.run(
              "copy", "--plain-http", "oci:" + layout + ":v1", registry.host() + "/fault/app:v1"));
      assertEquals(
          0,
          Main.run(
              "copy",
              "--plain-http",
              "oci:" + otherLayout + ":v1",
              registry.host() + "/fault/other:v1"));
      // the defaults' proportions (read timeout = READ deadline, request timeout 4×, 3 retries),
      // scaled down
      RegistryConfig rc =
          RegistryConfig.defaults()
              .withPlainHttp(true)
              .withMaxConnections(FETCH_THREADS)
              .withTimeouts(Duration.ofMillis(300), DEADLINE, DEADLINE.multipliedBy(4))
              .withRetry(
                  new RetryPolicy(3, Duration.ofMillis(10), Duration.ofMillis(250), DEADLINE));
      try (RegistryClient client =
          new RegistryClient(rc, CredentialStore.anonymous(), Sleeper.REAL)) {
        ImageSources sources = new ImageSources(ref -> new RegistryImageSource(client, ref));
        Catalog catalog = Catalog.load(tmp.resolve("state"));
        ImageRegistrar registrar = new ImageRegistrar(catalog, sources);
        ImageRecord image =
            registrar.register(proxy.host() + "/fault/app:v1", "faulty", null, false);
        assertEquals(
            digestTables, !image.chunkTables().isEmpty(), "chunk digest tables in the image");
        Descriptor blob = image.blobs().get(0);
        Descriptor otherBlob =
            registrar
                .register(registry.host() + "/fault/other:v1", "steady", null, false)
                .blobs()
                .get(0);
        DaemonHarness h =
            DaemonHarness.in(tmp)
                .sources(sources)
                .config(
                    c ->
                        c.maxOutstandingReads(256)
                            .fetch(
                                new FetchSettings(
                                    FETCH_THREADS, CHUNK, 4 * CHUNK, 0, DEADLINE, 256 << 10)))
                .start();
        FakeKernel kernel = h.kernel;
        FetchStats stats = h.fetchStats();
        Driver faulty =
            new Driver(kernel, "erofs,faulty", blob, blobBytes(layout, blob), new Random(seed));
        Driver steady =
            new Driver(
                kernel,
                "erofs,steady",
                otherBlob,
                blobBytes(otherLayout, otherBlob),
                new Random(seed + 1));
        Figures figures;
        ExecutorService pool = Executors.newFixedThreadPool(WORKERS + 1);
        try {
          proxy.slowMillis(200);
          proxy.schedule(FaultProxy.Schedule.random(seed, 0.5, faults));
          AtomicBoolean faulting = new AtomicBoolean(true);
          Future<?> steadyLoop =
              pool.submit(
                  () -> {
                    Driver.Cursor c = steady.cursor();
                    while (faulting.get()) {
                      steady.coldRead(c);
                      Thread.sleep(20);
                    }
                    return null;
                  });
          AtomicInteger next = new AtomicInteger();
          LongAdder[] whileDown = {new LongAdder(), new LongAdder()}; // data, EIO
          List<Future<?>> workers = new ArrayList<>();
          for (int w = 0; w < WORKERS; w++) {
            workers.add(
                pool.submit(
                    () -> {
                      Driver.Cursor c = faulty.cursor();
                      for (int i; (i = next.getAndIncrement()) < reads; ) {
                        boolean down = withDown && i >= reads * 2 / 5 && i < reads / 2;
                        if (withDown && i == reads * 2 / 5) {
                          proxy.down(); // the registry goes away: refused connections for the next
                          // stretch of READs
                        } else if (withDown && i == reads / 2) {
                          proxy.up();
                        }
                        Outcome o = faulty.coldRead(c);
                        if (down) {
                          whileDown[o == Outcome.DATA ? 0 : 1].increment();
                        }
                      }
                      return null;
                    }));
          }
          for (Future<?> w : workers) {
            w.get(5, TimeUnit.MINUTES);
          }
          long faultData = faulty.data.sum();
          long faultEio = faulty.eio.sum();
          long[] waits = faulty.latencies();
          proxy.up();
          proxy.schedule(FaultProxy.Schedule.none());
          faulting.set(false);
          steadyLoop.get(1, TimeUnit.MINUTES);

          // faults over: READs are served again, first those that failed (their chunks may still
          // have fetches in
          // flight from the faulty time), then new cold ones
          long r0 = System.nanoTime();
          long first = -1;
          int ok = 0;
          List<long[]> failed = faulty.failedRanges();
          List<long[]> again = new ArrayList<>(failed.subList(0, Math.min(40, failed.size())));
          int recoveryReads = again.size() + 20;
          Driver.Cursor c = faulty.cursor();
          for (int i = 0; i < recoveryReads; i++) {
            Outcome o = i < again.size() ? faulty.reread(again.get(i)) : faulty.coldRead(c);
            if (o == Outcome.DATA) {
              ok++;
              first = first < 0 ? (System.nanoTime() - r0) / 1_000_000 : first;
            }
          }
          long fileBytes = faulty.checkBackingFiles() + steady.checkBackingFiles();
          figures =
              new Figures(
                  reads,
                  faultData,
                  faultEio,
                  faulty.hangs.sum() + steady.hangs.sum(),
                  faulty.wrongBytes.sum() + steady.wrongBytes.sum(),
                  kernel.maxReadNanos.get() / 1_000_000,
                  waits[waits.length - 1],
                  waits[(int) (waits.length * 0.99)],
                  kernel.followUps.get(),
                  faulty.bytesChecked.sum() + steady.bytesChecked.sum() + fileBytes,
                  whileDown[0].sum(),
                  whileDown[1].sum(),
                  steady.data.sum() + steady.eio.sum(),
                  steady.eio.sum(),
                  steady.maxLatencyMs(),
                  ok,
                  recoveryReads,
                  first,
                  proxy.counts(),
                  stats.chunksVerified.sum(),
                  stats.integrityMismatchesOrigin.sum(),
                  (System.nanoTime() - t0) / 1_000_000_000);
        } finally {
          pool.shutdownNow();
          h.daemon.close();
          kernel.close();
        }
        figures.print(what);
        assertEquals(List.of(), kernel.violations, "protocol violations");
        assertEquals(0, figures.hangs(), "READs not answered within their deadline (+ margin)");
        assertTrue(
            figures.maxReadMs() <= DEADLINE.toMillis() + MARGIN_MS,
            "a READ took " + figures.maxReadMs() + " ms to be answered");
        assertEquals(
            0,
            figures.wrongBytes(),
            "bytes that differ from the blob: " + faulty.wrongAt + " " + steady.wrongAt);
        assertTrue(
            figures.eio() > 0 && figures.data() > reads / 4,
            "the faults bit, and many READs were still served");
        assertEquals(0, figures.steadyEio(), "the image served without faults kept being served");
        assertTrue(figures.steadyReads() > 10, "the other image was read meanwhile");
        assertEquals(
            figures.recoveryReads(),
            figures.recoveryOk(),
            "after the faults stop every READ is served");
        assertTrue(
            figures.faults().values().stream().mapToLong(Long::longValue).sum() > reads,
            "faults were injected: " + figures.faults());
        return figures;
      }
    }
  }

  private static byte[] blobBytes(Path layout, Descriptor blob) throws IOException {
    return Files.readAllBytes(layout.resolve("blobs/sha256/" + blob.digest().hex()));
  }

  /**
   * Issues cold READs (ranges no earlier READ on the object touched) and checks every answer: data
   * must be the blob's bytes; no answer within the deadline (twice for a two-chunk READ, which the
   * kernel may split in two) plus the margin is a hang.
   */
  private static final class Driver {
    private final FakeKernel kernel;
    private final String volumeKey;
    private final Descriptor blob;
    private final byte[] bytes;
    private final Random rnd;
    private final int chunks;
    private final List<FakeObject> objects = Collections.synchronizedList(new ArrayList<>());
    final LongAdder data = new LongAdder();
    final LongAdder eio = new LongAdder();
    final LongAdder hangs = new LongAdder();
    final LongAdder wrongBytes = new LongAdder();
    final LongAdder bytesChecked = new LongAdder();
    private final List<Long> latencies = Collections.synchronizedList(new ArrayList<>());
    private final List<long[]> failed = Collections.synchronizedList(new ArrayList<>());
    private final AtomicLong maxLatency = new AtomicLong();

    /** Where the first wrong bytes were found, for the failure message. */
    final List<String> wrongAt = Collections.synchronizedList(new ArrayList<>());

    Driver(FakeKernel kernel, String volumeKey, Descriptor blob, byte[] bytes, Random rnd) {
      this.kernel = kernel;
      this.volumeKey = volumeKey;
      this.blob = blob;
      this.bytes = bytes;
      this.rnd = rnd;
      this.chunks = (int) ((blob.size() + CHUNK - 1) / CHUNK);
    }

    /**
     * One kernel object (backing file) and the chunks READs have touched on it; one thread uses it.
     */
    final class Cursor {
      FakeObject object;
      final BitSet touched = new BitSet();

      void fresh() throws Exception {
        if (object != null) {
          kernel.close(object);
        }
        object = kernel.open(volumeKey, blob.digest().hex());
        assertEquals(blob.size(), object.copen.get(10, TimeUnit.SECONDS));
        objects.add(object);
        touched.clear();
      }
    }

    Cursor cursor() throws Exception {
      Cursor c = new Cursor();
      c.fresh();
      return c;
    }

    /** A READ of 4 KiB to two chunks at a random place no READ on this object touched before. */
    Outcome coldRead(Cursor c) throws Exception {
      List<Integer> cold =
          new ArrayList<>(); // chunks untouched, and so is the next one (a READ may span two)
      for (int i = c.touched.nextClearBit(0); i < chunks; i = c.touched.nextClearBit(i + 1)) {
        if (i + 1 == chunks || !c.touched.get(i + 1)) {
          cold.add(i);
        }
      }
      if (cold.size() < chunks / 8) {
        c.fresh();
        return coldRead(c);
      }
      int chunk;
      int span;
      int block;
      synchronized (rnd) {
        chunk = cold.get(rnd.nextInt(cold.size()));
        span = rnd.nextInt(4);
        long inChunk =
            Math.min(CHUNK, blob.size() - (long) chunk * CHUNK); // the last chunk may be short
        block = rnd.nextInt((int) ((inChunk + 4095) / 4096));
      }
      long offset = (long) chunk * CHUNK + (span == 3 ? 0 : 4096L * block);
      long length =
          switch (span) {
            case 0 -> 4096;
            case 1 -> 16384;
            case 2 -> CHUNK;
            default -> 2L * CHUNK;
          };
      length = Math.min(length, blob.size() - offset);
      c.touched.set(chunk);
      if (offset + length > (long) (chunk + 1) * CHUNK) {
        c.touched.set(chunk + 1);
      }
      return read(c.object, offset, length);
    }

    /**
     * The same range again on the object that failed it (or a fresh one if that was closed since).
     */
    Outcome reread(long[] range) throws Exception {
      FakeObject o;
      synchronized (objects) {
        o = objects.stream().filter(x -> x.objectId == range[0]).findFirst().orElseThrow();
      }
      return read(o.fdClosed ? cursor().object : o, range[1], range[2]);
    }

    private Outcome read(FakeObject o, long offset, long length) throws Exception {
      long t0 = System.nanoTime();
      CompletableFuture<Outcome> f = kernel.read(o, offset, length);
      long bound =
          DEADLINE.toMillis() * (length > CHUNK || offset % CHUNK + length > CHUNK ? 2 : 1)
              + MARGIN_MS;
      Outcome outcome;
      try {
        outcome = f.get(bound, TimeUnit.MILLISECONDS);
      } catch (TimeoutException e) {
        hangs.increment();
        System.out.println(
            "HANG: "
                + volumeKey
                + " object "
                + o.objectId
                + " READ "
                + offset
                + "+"
                + length
                + " not answered in "
                + bound
                + " ms; "
                + kernel.pendingReads()
                + " READs pending; threads:");
        Thread.getAllStackTraces()
            .forEach(
                (t, st) -> {
                  System.out.println("  " + t.getName() + " " + t.getState());
                  for (StackTraceElement el : Arrays.copyOf(st, Math.min(st.length, 12))) {
                    System.out.println("      at " + el);
                  }
                });
        outcome =
            f.get(20, TimeUnit.SECONDS); // answered late, or the test fails on the timeout here
      }
      long ms = (System.nanoTime() - t0) / 1_000_000;
      latencies.add(ms);
      maxLatency.accumulateAndGet(ms, Math::max);
      if (outcome == Outcome.DATA) {
        data.increment();
        long wrong = compare(o.file, offset, length);
        if (wrong > 0 && wrongAt.size() < 10) {
          wrongAt.add(
              "READ reply: object "
                  + o.objectId
                  + " "
                  + offset
                  + "+"
                  + length
                  + ": "
                  + wrong
                  + " bytes");
        }
        wrongBytes.add(wrong);
      } else {
        eio.increment();
        failed.add(new long[] {o.objectId, offset, length});
      }
      return outcome;
    }

    /** Bytes of {@code [offset, offset+length)} in the backing file that differ from the blob's. */
    private long compare(Path file, long offset, long length) throws IOException {
      ByteBuffer got = ByteBuffer.allocate((int) length);
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
        while (got.hasRemaining() && ch.read(got, offset + got.position()) > 0) {
          // read on
        }
      }
      long wrong = length - got.position();
      byte[] g = got.array();
      for (int i = 0; i < got.position(); i++) {
        if (g[i] != bytes[(int) offset + i]) {
          wrong++;
        }
      }
      bytesChecked.add(length);
      return wrong;
    }

    /**
     * Every byte present in the backing files (SEEK_DATA extents) against the blob — torn and
     * abandoned fetches included, not only the ranges READs asked for; the padding past the blob's
     * end must be zero. Adds what differs to {@link #wrongBytes}, returns the bytes compared.
     */
    long checkBackingFiles() throws IOException {
      long checked = 0;
      for (FakeObject o : List.copyOf(objects)) {
        checked += checkBackingFile(o.file);
      }
      return checked;
    }

    private long checkBackingFile(Path file) throws IOException {
      int fd = Posix.open(file.toString(), Posix.O_RDONLY | Posix.O_CLOEXEC, 0);
      long checked = 0;
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
        long pos = 0;
        while ((pos = Posix.lseek(fd, pos, Posix.SEEK_DATA)) >= 0) {
          long end = Posix.lseek(fd, pos, Posix.SEEK_HOLE);
          ByteBuffer buf = ByteBuffer.allocate((int) (end - pos));
          while (buf.hasRemaining() && ch.read(buf, pos + buf.position()) > 0) {
            // read on
          }
          byte[] b = buf.array();
          long wrong = 0;
          long firstWrong = -1;
          for (int i = 0; i < buf.position(); i++) {
            long at = pos + i;
            byte want = at < bytes.length ? bytes[(int) at] : 0;
            if (b[i] != want) {
              wrong++;
              firstWrong = firstWrong < 0 ? at : firstWrong;
            }
          }
          if (wrong > 0 && wrongAt.size() < 10) {
            wrongAt.add(
                file.getFileName()
                    + " extent "
                    + pos
                    + ".."
                    + end
                    + ": "
                    + wrong
                    + " bytes, the first at "
                    + firstWrong);
          }
          wrongBytes.add(wrong);
          checked += buf.position();
          pos = end;
        }
      } finally {
        Posix.closeQuietly(fd);
      }
      return checked;
    }

    List<long[]> failedRanges() {
      synchronized (failed) {
        return new ArrayList<>(failed);
      }
    }

    long[] latencies() {
      long[] l;
      synchronized (latencies) {
        l = latencies.stream().mapToLong(Long::longValue).toArray();
      }
      Arrays.sort(l);
      return l;
    }

    long maxLatencyMs() {
      return maxLatency.get();
    }
  }
}

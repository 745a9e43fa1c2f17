package dev.lazypull.fanotify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.catalog.ImageSources;
import dev.lazypull.image.Json;
import dev.lazypull.image.Manifest;
import dev.lazypull.oci.OciLayout;
import dev.lazypull.testing.CliRun;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.ErofsMounts;
import dev.lazypull.testing.LazypullProcess;
import dev.lazypull.testing.NbdFuseMount;
import dev.lazypull.testing.RegistryImages;
import dev.lazypull.testing.Requirements;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * Unmodified OCI images served through side-car indexes, on this host's kernel with the fanotify
 * front end: images made by umoci from a real tree (Debian's Python standard library, {@code
 * /usr/lib/python3.11}) in three layers — the tree, then deletions (files and a whole directory),
 * changes and additions ({@code umoci repack} writes the whiteouts), then a layer with an opaque
 * directory made by GNU tar and added by {@code umoci raw add-layer} — pushed by skopeo to
 * docker-registry 2.8 (no referrers API: the index is found through the referrers tag). Every
 * entry's metadata and md5 through the mount equal {@code umoci unpack} of the same image; a small
 * read moves a small share of the layers (registry access log); an image without an index is
 * refused with the way to make one, and {@code --index-locally} makes it; a tampered byte of a
 * layer is EIO, never other bytes. {@code lazypull nbd} (the flattened device, mounted by the
 * kernel through nbdfuse) and {@code lazypull prefetch --standalone} serve the same image, pushed
 * with a Docker schema 2 manifest.
 */
class IndexedImageMountIT {
  @TempDir(cleanup = CleanupMode.ON_SUCCESS)
  static Path work;

  private static DockerRegistryFixture reg;
  private static HostDaemon daemon;
  private static Path toml;
  private static Path layout;
  private static String expected;
  private static Path rootfs;

  @BeforeAll
  static void start() throws Exception {
    HostDaemon.requireHost(work);
    for (String tool : List.of("umoci", "skopeo", "tar", "getfattr")) {
      Requirements.requireTool(tool);
    }
    Requirements.require(
        Files.isDirectory(Path.of("/usr/lib/python3.11/email")),
        "a real tree: Debian's Python standard library at /usr/lib/python3.11 (.ci/install-deps installs python3)");
    reg = DockerRegistryFixture.builder(work.resolve("registry")).start();
    toml = RegistryImages.config(work.resolve("conf"), null);
    daemon = HostDaemon.in(work, toml, "--read-timeout", "20s").start();
    layout = work.resolve("oci");
    // layer 1: the tree; layer 2: deletions, a changed file, additions; layer 3: an opaque
    // directory (GNU tar)
    Requirements.run(
        "bash",
        "-euc",
        String.join(
            "\n",
            "cd '" + work + "'",
            "umoci init --layout oci",
            "umoci new --image oci:base",
            "umoci unpack --image oci:base b1 >/dev/null",
            "mkdir -p b1/rootfs/usr/lib b1/rootfs/etc",
            "cp -a /usr/lib/python3.11 b1/rootfs/usr/lib/",
            "printf 'first\\n' > b1/rootfs/etc/motd",
            "umoci repack --image oci:v1 b1",
            "umoci unpack --image oci:v1 b2 >/dev/null",
            "d=b2/rootfs/usr/lib/python3.11",
            "victim=$(ls -d $d/*/ | head -n 2 | tail -n 1); rm -rf \"$victim\"",
            "find $d -name '*.py' | sort | head -n 40 | xargs rm -f",
            "printf 'second\\n' > b2/rootfs/etc/motd",
            "mkdir -p b2/rootfs/opt/app && head -c 3000000 /dev/urandom > b2/rootfs/opt/app/data.bin",
            "printf 'x' > b2/rootfs/opt/app/tiny; chmod 0640 b2/rootfs/opt/app/tiny; chown 1234:5678 b2/rootfs/opt/app/tiny",
            "ln -s ../../etc/motd b2/rootfs/opt/app/motd-link",
            "umoci repack --image oci:v2 b2",
            "opq=$(ls -d $d/*/ | head -n 1 | sed 's|^b2/rootfs/||; s|/$||')",
            "mkdir -p l3/$opq && touch l3/$opq/.wh..wh..opq && printf 'replaced\\n' > l3/$opq/only-file",
            "tar --numeric-owner -C l3 -cf l3.tar usr",
            "umoci raw add-layer --image oci:v2 --tag v3 l3.tar",
            "umoci unpack --image oci:v3 ref >/dev/null"));
    rootfs = work.resolve("ref/rootfs");
    expected = HostReads.listing(rootfs);
    assertTrue(
        expected.lines().count() > 1000, "a real tree: " + expected.lines().count() + " entries");
    assertTrue(
        expected.contains("only-file"), "the opaque directory's new file is in the reference");
  }

  @AfterAll
  static void stop() {
    if (daemon != null) {
      daemon.cleanUp();
    }
    if (reg != null) {
      reg.close();
    }
  }

  /**
   * skopeo copy of oci:v3 to {@code repo}:v3 on the registry (OCI manifest); returns the reference.
   */
  private static String push(String repo) throws Exception {
    return push(repo, "oci");
  }

  /**
   * The same with a manifest format skopeo converts to: {@code oci} or {@code v2s2} (Docker schema
   * 2).
   */
  private static String push(String repo, String format) throws Exception {
    String ref = reg.host() + "/" + repo + ":v3";
    Requirements.run(
        "skopeo",
        "copy",
        "--quiet",
        "--format",
        format,
        "--dest-tls-verify=false",
        "oci:" + layout + ":v3",
        "docker://" + ref);
    return ref;
  }

  /**
   * The layer digests and sizes of oci:v3 (skopeo copies the layers as they are), as {@code
   * digest=size}.
   */
  private static Set<String> layerDigests() throws Exception {
    var image = ImageSources.localOnly().open("oci:" + layout + ":v3");
    var source = (OciLayout) image;
    var manifest = Json.parse(source.readVerified(source.findManifest()), Manifest.class, "v3");
    return manifest.layers().stream()
        .map(l -> l.digest() + "=" + l.size())
        .collect(Collectors.toSet());
  }

  /** Body bytes of registry GETs of the image's layer blobs so far. */
  private static long layerBytesServed(Set<String> layers) {
    Set<String> digests = layers.stream().map(l -> l.split("=")[0]).collect(Collectors.toSet());
    return reg.accessLog().stream()
        .filter(
            a ->
                a.method().equals("GET")
                    && (a.status() == 200 || a.status() == 206)
                    && digests.stream().anyMatch(d -> a.uri().contains(d)))
        .mapToLong(DockerRegistryFixture.Access::bytes)
        .sum();
  }

  private static CliRun.Result index(String ref) {
    return CliRun.run(
        "index",
        ref,
        "--push",
        "--plain-http",
        "--config",
        toml.toString(),
        "--scratch-dir",
        Files.isDirectory(work.resolve("scratch"))
            ? work.resolve("scratch").toString()
            : work.toString());
  }

  @Test
  void anIndexedUmociImageMountsByteExactAndASmallReadMovesLittle() throws Exception {
    String ref = push("gz/py");
    Path mnt = Files.createDirectories(work.resolve("mnt-py"));
    CliRun.Result refused = daemon.cli("mount", ref, mnt.toString());
    assertNotEquals(0, refused.code(), "no index yet: not mounted");
    assertTrue(
        refused.err().contains("lazypull index") && refused.err().contains("--index-locally"),
        "says how to make one: " + refused.err());
    assertEquals(List.of(), daemon.mountsUnderWork());

    long t0 = System.nanoTime();
    CliRun.Result indexed = index(ref);
    assertEquals(0, indexed.code(), indexed.err());
    System.out.printf(
        "index --push: %d ms; %s%n",
        (System.nanoTime() - t0) / 1_000_000,
        indexed.err().lines().filter(l -> l.startsWith("indexed")).findFirst().orElse(""));
    Set<String> layers = layerDigests();
    long compressed = layers.stream().mapToLong(l -> Long.parseLong(l.split("=")[1])).sum();
    long before = layerBytesServed(layers);

    daemon.mount(ref, mnt);
    try {
      assertEquals(
          before, layerBytesServed(layers), "mounting reads the index only, no layer bytes");
      // a small file of layer 1 that no later layer touched: one span of the largest layer
      String small =
          Requirements.run(
                  "bash",
                  "-c",
                  "cd '"
                      + rootfs
                      + "' && find usr/lib/python3.11 "
                      + "-name '*.py' -size -8k | sort | tail -n 1")
              .trim();
      HostReads.read(mnt.resolve(small), rootfs.resolve(small), work.resolve("small.copy"), false);
      long partial = layerBytesServed(layers) - before;
      System.out.printf(
          "reading %s moved %d of %d compressed layer bytes (%.2f%%)%n",
          small, partial, compressed, 100.0 * partial / compressed);
      assertTrue(partial > 0, "the read fetched its span");
      assertTrue(
          partial < compressed * 15 / 100,
          "a small read moves a small share of the layers: " + partial);

      ErofsMounts.assertSameListing(
          expected, HostReads.listing(mnt), "indexed umoci image vs umoci unpack");
      long all = layerBytesServed(layers) - before;
      System.out.printf(
          "reading everything moved %d layer bytes (%.2f of the compressed layers)%n",
          all, (double) all / compressed);
      HostReads.dropCaches();
      ErofsMounts.assertSameListing(expected, HostReads.listing(mnt), "warm, after drop_caches");
      assertEquals(all, layerBytesServed(layers) - before, "a warm re-read moves no layer bytes");
    } finally {
      daemon.umount(mnt);
    }
    assertEquals(List.of(), daemon.mountsUnderWork());
  }

  @Test
  void nbdAndStandalonePrefetchServeTheIndexedImage() throws Exception {
    NbdFuseMount.require();
    String ref =
        push(
            "gz/nbd",
            "v2s2"); // a Docker schema 2 manifest and layer media types, the same layer blobs
    String manifest =
        Requirements.run("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + ref);
    assertTrue(manifest.contains("application/vnd.docker.image.rootfs.diff.tar.gzip"), manifest);
    assertEquals(0, index(ref).code());
    Set<String> layers = layerDigests();
    long compressed = layers.stream().mapToLong(l -> Long.parseLong(l.split("=")[1])).sum();
    Path socket = work.resolve("nbd.sock");
    // lazy: a fresh cache, the flattened device mounted by the kernel (nbdfuse + loop), listed
    // whole
    try (LazypullProcess p =
        LazypullProcess.start(
            HostDaemon.jar(),
            work.resolve("nbd"),
            "nbd",
            ref,
            "--plain-http",
            "--config",
            toml.toString(),
            "--listen",
            "unix:" + socket,
            "--cache-dir",
            work.resolve("nbd-cache").toString())) {
      p.awaitLine("serving", 60);
      String listing =
          NbdFuseMount.run(work, socket, "nbd", "bash '" + ErofsMounts.listingScript() + "' .");
      ErofsMounts.assertSameListing(
          expected, listing, "lazypull nbd of the indexed image vs umoci unpack");
    }
    // standalone prefetch fills a cache; an export over it then reads no layer byte
    Path cache = work.resolve("prefetch-cache");
    long before = layerBytesServed(layers);
    CliRun.Result all =
        CliRun.run(
            "prefetch",
            ref,
            "--plain-http",
            "--config",
            toml.toString(),
            "--cache-dir",
            cache.toString(),
            "--standalone");
    assertEquals(0, all.code(), all.err());
    assertTrue(all.out().contains("(100%)"), all.out());
    long prefetched = layerBytesServed(layers) - before;
    System.out.printf(
        "standalone prefetch of the indexed image moved %d layer bytes (%.2f of the layers)%n",
        prefetched, (double) prefetched / compressed);
    assertTrue(prefetched >= compressed / 2, "the layers' spans were read: " + prefetched);
    before = layerBytesServed(layers);
    try (LazypullProcess p =
        LazypullProcess.start(
            HostDaemon.jar(),
            work.resolve("nbd2"),
            "nbd",
            ref,
            "--plain-http",
            "--config",
            toml.toString(),
            "--listen",
            "unix:" + socket,
            "--cache-dir",
            cache.toString())) {
      p.awaitLine("serving", 60);
      String listing =
          NbdFuseMount.run(work, socket, "nbd2", "bash '" + ErofsMounts.listingScript() + "' .");
      ErofsMounts.assertSameListing(expected, listing, "lazypull nbd over the prefetched cache");
    }
    assertEquals(before, layerBytesServed(layers), "everything came from the prefetched cache");
  }

  @Test
  void indexLocallyBuildsTheIndexOnThisHost() throws Exception {
    String ref = push("gz/local");
    Path mnt = work.resolve("mnt-local");
    // the same image as gz/py: the index built here is byte for byte the one pushed there (same
    // digest, same
    // default fsid, registered for gz/py already): mount it under an fsid of its own
    daemon.mount(ref, mnt, "--index-locally", "--fsid", "gzlocal");
    try {
      ErofsMounts.assertSameListing(
          expected, HostReads.listing(mnt), "indexed locally vs umoci unpack");
    } finally {
      daemon.umount(mnt);
    }
    assertTrue(
        Files.isRegularFile(daemon.cache.resolve("indexes/index.json")),
        "kept in the local index store");
    Files.createDirectories(mnt);
    CliRun.Result again = daemon.cli("mount", "--fsid", "gzlocal", ref, mnt.toString());
    assertEquals(0, again.code(), "the local index is found again: " + again.err());
    daemon.umount(mnt);
  }

  @Test
  void afterADaemonCrashTheMountedImagesDevicesAreServedFromItsRecordAlone() throws Exception {
    // new random content: nothing of it is cached; big.bin is first read after the restart
    Requirements.run(
        "bash",
        "-euc",
        String.join(
            "\n",
            "cd '" + work + "'",
            "umoci init --layout restart-oci && umoci new --image restart-oci:base",
            "umoci unpack --image restart-oci:base rb >/dev/null",
            "mkdir -p rb/rootfs/data",
            "head -c 9000000 /dev/urandom > rb/rootfs/data/big.bin",
            "head -c 3000 /dev/urandom > rb/rootfs/data/small.bin",
            "umoci repack --image restart-oci:v1 rb",
            "skopeo copy --quiet --dest-tls-verify=false oci:restart-oci:v1 docker://"
                + reg.host()
                + "/gz/restart:v1"));
    String ref = reg.host() + "/gz/restart:v1";
    assertEquals(0, index(ref).code());
    Path mnt = work.resolve("mnt-restart");
    Path src = work.resolve("rb/rootfs/data");
    daemon.mount(ref, mnt);
    try {
      HostReads.read(
          mnt.resolve("data/small.bin"),
          src.resolve("small.bin"),
          work.resolve("small-r.copy"),
          false);
      // a crash: the mount stays, the fd keeper holds the group; the new daemon serves the image it
      // finds in its
      // catalog without resolving it again — the devices from their descriptors (device map
      // digests) alone
      daemon.kill9();
      daemon.start();
      HostReads.Outcome big =
          HostReads.read(
              mnt.resolve("data/big.bin"),
              src.resolve("big.bin"),
              work.resolve("big-r.copy"),
              false);
      assertTrue(big.complete(), big.toString());
      assertTrue(daemon.logText().contains("gz/restart"), "the restarted daemon served the image");
    } finally {
      daemon.umount(mnt);
    }
    assertEquals(List.of(), daemon.mountsUnderWork());
  }

  @Test
  void aTamperedLayerByteIsAnIoErrorNeverWrongBytes() throws Exception {
    // an image of its own, so that nothing of it is cached: one umoci layer of random
    // (incompressible) files
    Path dir = work.resolve("tamper");
    Requirements.run(
        "bash",
        "-euc",
        String.join(
            "\n",
            "cd '" + work + "'",
            "umoci init --layout tamper-oci && umoci new --image tamper-oci:base",
            "umoci unpack --image tamper-oci:base tb >/dev/null",
            "mkdir -p tb/rootfs/data",
            "head -c 12000000 /dev/urandom > tb/rootfs/data/big.bin",
            "head -c 5000 /dev/urandom > tb/rootfs/data/small.bin",
            "umoci repack --image tamper-oci:v1 tb",
            "skopeo copy --quiet --dest-tls-verify=false oci:tamper-oci:v1 docker://"
                + reg.host()
                + "/gz/tamper:v1"));
    String ref = reg.host() + "/gz/tamper:v1";
    assertEquals(0, index(ref).code());
    String layer =
        Requirements.run(
                "bash", "-c", "cd '" + work + "/tamper-oci' && ls -S blobs/sha256 | head -n 1")
            .trim();
    Path data =
        reg.dir()
            .resolve("storage/docker/registry/v2/blobs/sha256")
            .resolve(layer.substring(0, 2))
            .resolve(layer)
            .resolve("data");
    try (RandomAccessFile f = new RandomAccessFile(data.toFile(), "rw")) {
      long at = f.length() * 2 / 3; // inside big.bin's data (the tar lists data/big.bin first)
      f.seek(at);
      int b = f.read();
      f.seek(at);
      f.write(b ^ 0x41);
    }
    Path mnt = work.resolve("mnt-tamper");
    daemon.mount(ref, mnt);
    try {
      HostReads.Outcome big =
          HostReads.read(
              mnt.resolve("data/big.bin"),
              work.resolve("tb/rootfs/data/big.bin"),
              work.resolve("big.copy"),
              true);
      assertTrue(big.ioError(), "the tampered span is an I/O error: " + big);
      HostReads.Outcome again =
          HostReads.read(
              mnt.resolve("data/big.bin"),
              work.resolve("tb/rootfs/data/big.bin"),
              work.resolve("big2.copy"),
              true);
      assertTrue(again.ioError(), "and stays one (never zeros): " + again);
      System.out.println("tampered layer: " + big + "; again " + again);
    } finally {
      daemon.umount(mnt);
    }
    assertTrue(Files.isDirectory(dir.getParent()));
    assertEquals(List.of(), daemon.mountsUnderWork());
  }
}

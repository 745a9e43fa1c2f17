package dev.lazypull.pack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Digest;
import dev.lazypull.image.Json;
import dev.lazypull.testing.CliRun;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.RegistryImages;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestImages;
import dev.lazypull.testing.TestTrees;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code pack --push} and {@code convert} with registry sources and destinations against Debian's
 * real {@code docker-registry}: the pushed image is byte-identical (same manifest digest) to the
 * one built into a local layout, existing blobs are skipped, cross-repository mounts and chunked
 * uploads happen when they should, a converted registry image equals the conversion of the same
 * image from a layout, and a tampered source layer fails the conversion before anything is tagged.
 */
class RegistryPushConvertIT {
  @TempDir static Path work;
  static DockerRegistryFixture reg;
  static Path config;
  static Path chunkedConfig;
  static Path tree;

  @BeforeAll
  static void start() throws Exception {
    Requirements.requireTool("tar");
    reg = DockerRegistryFixture.builder(work.resolve("registry")).start();
    config = RegistryImages.config(work, null);
    chunkedConfig =
        RegistryImages.config(
            work.resolve("chunked"),
            "chunked_upload_threshold = \"1M\"\nupload_chunk_size = \"1M\"\n");
    tree = TestTrees.mixed(work.resolve("tree"), 3);
  }

  @AfterAll
  static void stop() {
    if (reg != null) {
      reg.close();
    }
  }

  /** The args plus the registry flags (and, for pack/convert, the scratch dir). */
  private static String[] withRegistry(Path toml, String... args) {
    List<String> all = new ArrayList<>(List.of(args));
    all.addAll(List.of("--plain-http", "--config", toml.toString()));
    if (!args[0].equals("copy")) {
      all.addAll(List.of("--scratch-dir", work.resolve("scratch").toString()));
    }
    return all.toArray(String[]::new);
  }

  private static long accessCount(String method, String uriPart, int status) {
    return reg.accessLog().stream()
        .filter(
            a ->
                a.method().equals(method)
                    && a.uri().contains(uriPart)
                    && (status == 0 || a.status() == status))
        .count();
  }

  private static void assertScratchEmpty() throws IOException {
    Path s = work.resolve("scratch");
    if (Files.exists(s)) {
      try (Stream<Path> files = Files.walk(s)) {
        assertEquals(
            List.of(), files.filter(Files::isRegularFile).toList(), "scratch files left behind");
      }
    }
  }

  @Test
  void packPushesTheSameImageItWritesLocallySkipsMountsAndChunks() throws Exception {
    CliRun.Result local =
        CliRun.run(
            "pack",
            tree.toString(),
            "--output",
            "oci:" + work.resolve("layout") + ":v1",
            "--mtime",
            "0");
    assertEquals(0, local.code());
    String ref = reg.host() + "/lazy/app:v1";
    CliRun.Result pushed =
        CliRun.run(withRegistry(config, "pack", tree.toString(), "--push", ref, "--mtime", "0"));
    assertEquals(0, pushed.code(), pushed.err());
    assertEquals(local.lastLine(), pushed.lastLine(), "same manifest digest as the local build");
    long uploads = accessCount("PUT", "/lazy/app/blobs/uploads/", 201);
    assertTrue(uploads >= 4, "bootstrap, data blob, table, config uploaded: " + uploads);
    assertEquals(1, accessCount("PUT", "/lazy/app/manifests/v1", 201));
    assertScratchEmpty();

    // The registry serves what the local layout holds (copy verifies every digest on the way down).
    CliRun.Result copied =
        CliRun.run(withRegistry(config, "copy", ref, "oci:" + work.resolve("pulled") + ":v1"));
    assertEquals(0, copied.code(), copied.err());
    assertTrue(copied.out().contains(local.lastLine()), copied.out());

    // Everything is there already: HEADs only, then the manifest under the new tag.
    long posts = accessCount("POST", "/blobs/uploads/", 0);
    assertEquals(
        0,
        CliRun.run(
                withRegistry(
                    config,
                    "pack",
                    tree.toString(),
                    "--push",
                    reg.host() + "/lazy/app:v2",
                    "--mtime",
                    "0"))
            .code());
    assertEquals(
        posts, accessCount("POST", "/blobs/uploads/", 0), "no upload started for present blobs");
    assertEquals(1, accessCount("PUT", "/lazy/app/manifests/v2", 201));

    // Another repository of the same registry: mounted from lazy/app, not uploaded.
    CliRun.Result mounted =
        CliRun.run(
            withRegistry(
                config,
                "pack",
                tree.toString(),
                "--push",
                reg.host() + "/lazy/other:v1",
                "--mtime",
                "0",
                "--mount-from",
                "lazy/app"));
    assertEquals(0, mounted.code(), mounted.err());
    assertTrue(accessCount("POST", "/lazy/other/blobs/uploads/?mount=", 201) >= 4, reg.logText());
    assertEquals(0, accessCount("PUT", "/lazy/other/blobs/uploads/", 0), "nothing uploaded");
    assertTrue(mounted.err().contains("mounted"), mounted.err());

    // Chunked uploads (threshold 1 MiB): the data blob goes up in PATCHes.
    CliRun.Result chunked =
        CliRun.run(
            withRegistry(
                chunkedConfig,
                "pack",
                tree.toString(),
                "--push",
                reg.host() + "/lazy/chunked:v1",
                "--mtime",
                "0"));
    assertEquals(0, chunked.code(), chunked.err());
    assertEquals(local.lastLine(), chunked.lastLine());
    assertTrue(
        accessCount("PATCH", "/lazy/chunked/blobs/uploads/", 202) >= 2,
        "chunked: " + reg.logText());
  }

  @Test
  void convertReadsFromAndPushesToTheRegistryAndRefusesTamperedLayers() throws Exception {
    Requirements.run(
        "bash",
        "-c",
        String.join(
            "\n",
            "set -e",
            "cd '" + work + "'",
            "mkdir -p c1/etc c1/app c2/app c2/etc",
            "echo one > c1/etc/conf; echo gone > c1/app/old",
            "head -c 2500000 /dev/urandom > c1/app/big",
            "touch c2/app/.wh.old; echo two > c2/etc/conf",
            "echo new > c2/app/new",
            "find c1 c2 -exec touch -h -d @1600000000 {} +"));
    Path src = work.resolve("src-layout");
    TestImages.write(
        src,
        "v1",
        List.of(
            TestImages.tarOf(work.resolve("c1"), work.resolve("c1.tar.gz"), "gzip"),
            TestImages.tarOf(work.resolve("c2"), work.resolve("c2.tar"), "none")));
    String plainRef = reg.host() + "/plain/app:v1";
    assertEquals(
        0, CliRun.run(withRegistry(config, "copy", "oci:" + src + ":v1", plainRef)).code());

    CliRun.Result fromLayout =
        CliRun.run(
            "convert", "oci:" + src + ":v1", "oci:" + work.resolve("conv") + ":v1", "--mtime", "0");
    assertEquals(0, fromLayout.code(), fromLayout.err());
    CliRun.Result fromRegistry =
        CliRun.run(
            withRegistry(
                config, "convert", plainRef, reg.host() + "/lazy/conv:v1", "--mtime", "0"));
    assertEquals(0, fromRegistry.code(), fromRegistry.err());
    assertEquals(
        fromLayout.lastLine(),
        fromRegistry.lastLine(),
        "same image from a registry as from a layout");
    assertEquals(1, accessCount("PUT", "/lazy/conv/manifests/v1", 201));
    assertScratchEmpty();

    // Registry to a local layout works too, and gives the same digest.
    CliRun.Result toLayout =
        CliRun.run(
            withRegistry(
                config,
                "convert",
                plainRef,
                "oci:" + work.resolve("conv2") + ":v1",
                "--mtime",
                "0"));
    assertEquals(fromLayout.lastLine(), toLayout.lastLine());

    // A layer whose stored bytes were altered in the registry: the download's sha256 check fails
    // the
    // conversion, nothing is tagged, no scratch is left.
    String hex = layerHex(src);
    Path data = RegistryImages.blobData(reg, Digest.parse("sha256:" + hex));
    byte[] bytes = Files.readAllBytes(data);
    bytes[bytes.length / 2] ^= 1;
    Files.write(data, bytes);
    CliRun.Result bad =
        CliRun.run(
            withRegistry(config, "convert", plainRef, reg.host() + "/lazy/bad:v1", "--mtime", "0"));
    assertEquals(1, bad.code());
    assertTrue(bad.err().contains(hex) && bad.err().contains("hashes to"), bad.err());
    assertEquals(0, accessCount("PUT", "/lazy/bad/manifests/", 0), "nothing tagged");
    assertScratchEmpty();
  }

  /** The hex digest of the first layer of the layout's only image. */
  private static String layerHex(Path layout) throws Exception {
    var idx = Json.MAPPER.readTree(Files.readAllBytes(layout.resolve("index.json")));
    String m = idx.path("manifests").get(0).path("digest").asText().substring(7);
    var manifest = Json.MAPPER.readTree(Files.readAllBytes(layout.resolve("blobs/sha256/" + m)));
    return manifest.path("layers").get(0).path("digest").asText().substring(7);
  }
}

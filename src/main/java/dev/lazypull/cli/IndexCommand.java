package dev.lazypull.cli;

import dev.lazypull.app.Sources;
import dev.lazypull.config.ConfigException;
import dev.lazypull.image.ImageReference;
import dev.lazypull.index.IndexArtifact;
import dev.lazypull.index.IndexBuilder;
import dev.lazypull.index.IndexStore;
import dev.lazypull.index.IndexedImages;
import dev.lazypull.pack.ImageOutput;
import dev.lazypull.pack.OciLayoutOutput;
import dev.lazypull.pack.RegistryOutput;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryImageSource;
import dev.lazypull.registry.Repository;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull index IMAGE [--push | --output oci:DIR[:TAG]]}: the side-car index of an
 * unmodified OCI image, built by reading each layer once; pushed next to the image (referrers),
 * written to a layout, or kept in the host's local index store. Prints the index's manifest digest
 * on stdout, a summary on stderr.
 */
@Command(
    name = "index",
    mixinStandardHelpOptions = true,
    description =
        "Index an ordinary OCI/Docker image (gzip or uncompressed tar layers) so that it mounts lazily "
            + "as it is: each layer is read once; the index (an EROFS bootstrap of the merged tree, per layer its gzip "
            + "checkpoints in SOCI's zinfo layout, a span table, a device map and a chunk digest table) is an OCI "
            + "artifact whose subject is the image.")
final class IndexCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "IMAGE",
      description = "oci:DIR[:TAG] or HOST/REPO[:TAG|@DIGEST].")
  String image;

  @Option(
      names = "--push",
      description =
          "Push the index to the image's repository: tagged "
              + "sha256-<image hex>.lazypull-index and listed by the referrers API, or (registries without it) in the "
              + "referrers tag sha256-<image hex>.")
  boolean push;

  @Option(
      names = "--output",
      paramLabel = "oci:DIR[:TAG]",
      description =
          "Write the index to an OCI layout (tag "
              + "default: sha256-<image hex>.lazypull-index, which is where an oci: image in the same layout finds it).")
  String output;

  @Option(
      names = "--cache-dir",
      paramLabel = "DIR",
      description =
          "Without --push or --output the index goes to "
              + "this host cache's local index store (default: /var/cache/lazypull), where the daemon finds it.")
  Path cacheDir = Path.of("/var/cache/lazypull");

  @Option(
      names = "--span-size",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description =
          "Uncompressed bytes between gzip checkpoints (default: 4M, as SOCI and erofs-utils; smaller: "
              + "less read amplification, a larger index: 32 KiB per checkpoint).")
  long spanSize = IndexBuilder.Options.defaults().spanSize();

  @Option(
      names = "--chunk-size",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description = "EROFS chunk size of the bootstrap's files (default: 1M).")
  long chunkSize = IndexBuilder.Options.DEFAULT_CHUNK_SIZE;

  @Option(
      names = "--entry-size",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description =
          "Bytes per chunk digest entry of each layer's device: the unit fetched and verified "
              + "(default: 256K).")
  long entrySize = IndexBuilder.Options.DEFAULT_ENTRY_SIZE;

  @Option(
      names = "--scratch-dir",
      paramLabel = "DIR",
      description = "Where --push stages the index's blobs " + "(default: $TMPDIR, else /var/tmp).")
  Path scratchDir;

  @Mixin RegistryOptions registry;

  @Override
  public Integer call() throws Exception {
    if (push && output != null) {
      System.err.println("lazypull index: --push and --output exclude each other");
      return 2;
    }
    IndexBuilder.Options o;
    ImageReference dst;
    try {
      o =
          new IndexBuilder.Options(
              spanSize, Math.toIntExact(chunkSize), Math.toIntExact(entrySize));
      dst = output == null ? null : BuildOptions.parseReference(output);
      if (dst != null && !(dst instanceof ImageReference.OciLayout)) {
        throw new IllegalArgumentException(
            "--output takes oci:DIR[:TAG] (use --push for the image's registry)");
      }
    } catch (IllegalArgumentException | ArithmeticException e) {
      System.err.println("lazypull index: " + e.getMessage());
      return 2;
    }
    RegistryClient client;
    try {
      client = RegistryClient.create(registry.registryConfig());
    } catch (ConfigException e) {
      System.err.println("lazypull index: " + e.getMessage());
      return 2;
    }
    try (client;
        ProgressDisplay display = new ProgressDisplay()) {
      IndexedImages.Source source =
          (IndexedImages.Source) Sources.over(client, cacheDir).open(image);
      IndexedImages.Subject subject = source.subject();
      if (subject.isLazypull()) {
        System.err.println(
            "lazypull index: " + image + " is a lazypull image already: it mounts lazily as it is");
        return 1;
      }
      RegistryImageSource reg = source.base() instanceof RegistryImageSource r ? r : null;
      if (push && reg == null) {
        System.err.println(
            "lazypull index: --push needs a registry image; for oci: images use --output");
        return 2;
      }
      String tag = IndexArtifact.localTag(subject.descriptor().digest());
      IndexBuilder.Result r;
      try (ImageOutput out =
          push
              ? new RegistryOutput(
                  client.pusher(),
                  new ImageReference.Registry(
                      reg.reference().registry(), reg.reference().repository(), tag, null),
                  scratchDir != null ? scratchDir : scratchRoot(),
                  null,
                  display.progress())
              : dst != null
                  ? new OciLayoutOutput(
                      ((ImageReference.OciLayout) dst).dir(),
                      ((ImageReference.OciLayout) dst).tag() != null
                          ? ((ImageReference.OciLayout) dst).tag()
                          : tag)
                  : IndexStore.inCache(cacheDir).output(subject.descriptor().digest())) {
        r = source.build(subject, o, out, display.progress());
      }
      if (push) {
        IndexedImages.RegistryIndexes.link(
            client, Repository.of(reg.reference()), subject.descriptor().digest(), r.manifest());
      }
      long compressed = 0;
      for (IndexBuilder.LayerStats l : r.layers()) {
        compressed += l.layer().size();
      }
      System.err.printf(
          "indexed %s (%d layers, %d files, %d compressed bytes): index %s, %d bytes (%.2f%% of the "
              + "layers; bootstrap %d)%n",
          image,
          r.layers().size(),
          r.files(),
          compressed,
          r.manifest().digest(),
          r.indexBytes(),
          compressed == 0 ? 0.0 : 100.0 * r.indexBytes() / compressed,
          r.bootstrap().size());
      System.out.println(r.manifest().digest());
    }
    return 0;
  }

  private static Path scratchRoot() {
    String env = System.getenv("TMPDIR");
    return Path.of(env != null && !env.isBlank() ? env : "/var/tmp");
  }
}

package dev.lazypull.cli;

import dev.lazypull.config.ConfigException;
import dev.lazypull.image.ImageReference;
import dev.lazypull.pack.ImageBuilder;
import dev.lazypull.pack.ImageOutput;
import dev.lazypull.pack.Packer;
import dev.lazypull.registry.RegistryClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull pack SRC --output oci:DIR[:TAG] | --push HOST/REPO[:TAG]}: builds a lazypull
 * image (EROFS bootstrap, data blobs, chunk digest tables) from a directory or a tar archive, into
 * a local OCI layout or straight to a registry. Prints the manifest digest on stdout.
 */
@Command(
    name = "pack",
    mixinStandardHelpOptions = true,
    description =
        "Build a lazypull image from a directory or a tar (.tar, .tar.gz, .tar.zst): an EROFS "
            + "bootstrap plus chunked data blobs, reproducibly (same input and options, same digests).")
final class PackCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "SRC",
      description = "A directory, or a tar file (optionally gzip/zstd).")
  Path source;

  static final class Target {
    @Option(
        names = "--output",
        required = true,
        paramLabel = "oci:DIR[:TAG]",
        description = "Local OCI layout.")
    String output;

    @Option(
        names = "--push",
        required = true,
        paramLabel = "REF",
        description =
            "Push to this registry reference, HOST/REPO[:TAG] (blobs the repository has are skipped; "
                + "the manifest is tagged last).")
    String push;
  }

  @ArgGroup(exclusive = true, multiplicity = "1")
  Target target;

  @Mixin BuildOptions build;

  @Mixin RegistryOptions registry;

  @Option(
      names = "--blob-size-cap",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description = "Start a new data blob before one would exceed SIZE (default: no cap).")
  long blobCap;

  @Override
  public Integer call() throws Exception {
    ImageReference dst =
        BuildOptions.parseReference(target.push != null ? target.push : target.output);
    if (target.push != null && !(dst instanceof ImageReference.Registry)) {
      System.err.println(
          "lazypull pack: --push wants a registry reference (HOST/REPO[:TAG]); use --output for "
              + target.push);
      return 2;
    }
    if (!Files.exists(source)) {
      System.err.println("lazypull pack: " + source + " does not exist");
      return 2;
    }
    int chunk = build.checkedChunkSize();
    if (blobCap != 0 && blobCap < chunk) {
      System.err.println(
          "lazypull pack: --blob-size-cap must be at least the chunk size (" + chunk + ")");
      return 2;
    }
    Packer.Options o = build.packerOptions(blobCap);
    RegistryClient client;
    try {
      client = registry.client();
    } catch (ConfigException e) {
      System.err.println("lazypull pack: " + e.getMessage());
      return 2;
    }
    try (client;
        ProgressDisplay display = new ProgressDisplay();
        ImageOutput out = build.openOutput(dst, client, display.progress())) {
      ImageBuilder.Built built = Packer.pack(source, out, o, display.progress());
      System.out.println(built.manifest().digest());
    }
    return 0;
  }
}

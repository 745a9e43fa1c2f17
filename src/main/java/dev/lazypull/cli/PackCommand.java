package dev.lazypull.cli;

import dev.lazypull.pack.ImageBuilder;
import dev.lazypull.pack.ImageOutput;
import dev.lazypull.pack.Packer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull pack SRC --output oci:DIR[:TAG]}: builds a lazypull image (EROFS bootstrap, data blobs,
 * chunk digest tables) from a directory or a tar archive. Prints the manifest digest on stdout.
 */
@Command(name = "pack", mixinStandardHelpOptions = true,
    description = "Build a lazypull image from a directory or a tar (.tar, .tar.gz, .tar.zst): an EROFS "
        + "bootstrap plus chunked data blobs, reproducibly (same input and options, same digests).")
final class PackCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "SRC", description = "A directory, or a tar file (optionally gzip/zstd).")
  Path source;

  static final class Target {
    @Option(names = "--output", required = true, paramLabel = "oci:DIR[:TAG]", description = "Local OCI layout.")
    String output;

    @Option(names = "--push", required = true, paramLabel = "REF",
        description = "Registry reference (pending: needs the registry client).")
    String push;
  }

  @ArgGroup(exclusive = true, multiplicity = "1")
  Target target;

  @Mixin BuildOptions build;

  @Option(names = "--blob-size-cap", paramLabel = "SIZE", converter = Units.SizeConverter.class,
      description = "Start a new data blob before one would exceed SIZE (default: no cap).")
  long blobCap;

  @Override
  public Integer call() throws Exception {
    if (target.push != null) {
      System.err.println("lazypull pack: " + BuildOptions.pushPending(target.push));
      return 2;
    }
    if (!Files.exists(source)) {
      System.err.println("lazypull pack: " + source + " does not exist");
      return 2;
    }
    int chunk = build.checkedChunkSize();
    if (blobCap != 0 && blobCap < chunk) {
      System.err.println("lazypull pack: --blob-size-cap must be at least the chunk size (" + chunk + ")");
      return 2;
    }
    Packer.Options o = new Packer.Options(chunk, blobCap, build.threads, build.mtimeSeconds());
    try (ImageOutput out = BuildOptions.openOutput(target.output);
        ProgressDisplay display = new ProgressDisplay()) {
      ImageBuilder.Built built = Packer.pack(source, out, o, display.progress());
      System.out.println(built.manifest().digest());
    }
    return 0;
  }
}

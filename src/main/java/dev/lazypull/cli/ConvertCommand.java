package dev.lazypull.cli;

import dev.lazypull.config.ConfigException;
import dev.lazypull.image.ImageReference;
import dev.lazypull.pack.Converter;
import dev.lazypull.pack.ImageBuilder;
import dev.lazypull.pack.ImageOutput;
import dev.lazypull.pack.OciLayoutSourceImage;
import dev.lazypull.pack.Packer;
import dev.lazypull.pack.RegistrySourceImage;
import dev.lazypull.pack.SourceImage;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull convert SRC_IMAGE DST_IMAGE}: an ordinary container image into a lazypull image,
 * one data blob per source layer plus one merged bootstrap. Prints the new manifest digest on
 * stdout.
 */
@Command(
    name = "convert",
    mixinStandardHelpOptions = true,
    description =
        "Convert an ordinary OCI/Docker image (tar, tar+gzip, tar+zstd layers) into a lazypull image: "
            + "layers applied with whiteouts into one EROFS bootstrap, one data blob per source layer.")
final class ConvertCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "SRC_IMAGE",
      description = "oci:DIR[:TAG] or HOST/REPO[:TAG|@DIGEST].")
  String source;

  @Parameters(
      index = "1",
      paramLabel = "DST_IMAGE",
      description = "oci:DIR[:TAG] or HOST/REPO[:TAG] (a push).")
  String destination;

  @Mixin BuildOptions build;

  /**
   * Also {@code --platform}: which image of a multi-platform SRC_IMAGE (default: linux/<this
   * machine>).
   */
  @Mixin RegistryOptions registry;

  @Override
  public Integer call() throws Exception {
    Packer.Options o = build.packerOptions(0);
    ImageReference src = BuildOptions.parseReference(source);
    ImageReference dst = BuildOptions.parseReference(destination);
    RegistryClient client;
    try {
      client = RegistryClient.create(registry.registryConfig("linux/" + hostArch()));
    } catch (ConfigException e) {
      System.err.println("lazypull convert: " + e.getMessage());
      return 2;
    }
    try (client;
        SourceImage in = openSource(src, client, build.scratchRoot());
        ProgressDisplay display = new ProgressDisplay();
        ImageOutput out = build.openOutput(dst, client, display.progress())) {
      ImageBuilder.Built built = Converter.convert(in, out, o, display.progress());
      System.out.println(built.manifest().digest());
    }
    return 0;
  }

  /**
   * Opens a source image: a local layout, or a registry image whose layers are downloaded as
   * needed.
   */
  static SourceImage openSource(ImageReference ref, RegistryClient client, Path scratchRoot)
      throws IOException {
    RegistryConfig c = client.config();
    if (ref instanceof ImageReference.OciLayout oci) {
      return OciLayoutSourceImage.open(oci.dir(), oci.tag(), c.platform());
    }
    return RegistrySourceImage.open(client, (ImageReference.Registry) ref, scratchRoot);
  }

  private static String hostArch() {
    String a = System.getProperty("os.arch");
    return "aarch64".equals(a) ? "arm64" : "x86_64".equals(a) ? "amd64" : a;
  }
}

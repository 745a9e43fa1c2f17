package dev.lazypull.cli;

import dev.lazypull.image.ImageReference;
import dev.lazypull.pack.Converter;
import dev.lazypull.pack.ImageBuilder;
import dev.lazypull.pack.ImageOutput;
import dev.lazypull.pack.OciLayoutSourceImage;
import dev.lazypull.pack.Packer;
import dev.lazypull.pack.SourceImage;
import java.io.IOException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull convert SRC_IMAGE DST_IMAGE}: an ordinary container image into a lazypull image, one data
 * blob per source layer plus one merged bootstrap. Prints the new manifest digest on stdout.
 */
@Command(name = "convert", mixinStandardHelpOptions = true,
    description = "Convert an ordinary OCI/Docker image (tar, tar+gzip, tar+zstd layers) into a lazypull image: "
        + "layers applied with whiteouts into one EROFS bootstrap, one data blob per source layer.")
final class ConvertCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "SRC_IMAGE", description = "oci:DIR[:TAG] (registry sources: pending).")
  String source;

  @Parameters(index = "1", paramLabel = "DST_IMAGE", description = "oci:DIR[:TAG] (registry push: pending).")
  String destination;

  @Option(names = "--platform", paramLabel = "OS/ARCH[/VARIANT]",
      description = "Platform to pick when SRC_IMAGE is a multi-platform index (default: linux/<this machine>).")
  String platform = "linux/" + hostArch();

  @Mixin BuildOptions build;

  @Override
  public Integer call() throws Exception {
    Packer.Options o = new Packer.Options(build.checkedChunkSize(), 0, build.threads, build.mtimeSeconds());
    SourceImage src = openSource(source, platform);
    try (ImageOutput out = BuildOptions.openOutput(destination);
        ProgressDisplay display = new ProgressDisplay()) {
      ImageBuilder.Built built = Converter.convert(src, out, o, display.progress());
      System.out.println(built.manifest().digest());
    }
    return 0;
  }

  /** Opens a source image; only this changes when registry sources arrive. */
  static SourceImage openSource(String reference, String platform) throws IOException {
    ImageReference ref = BuildOptions.parseReference(reference);
    if (ref instanceof ImageReference.OciLayout oci) {
      return OciLayoutSourceImage.open(oci.dir(), oci.tag(), platform);
    }
    throw new UnsupportedOperationException("converting from a registry (" + reference + ") is not available yet: "
        + "it needs the registry client, which is pending; copy the image to an OCI layout first (skopeo copy "
        + "docker://… oci:DIR:TAG) and convert oci:DIR:TAG");
  }

  private static String hostArch() {
    String a = System.getProperty("os.arch");
    return "aarch64".equals(a) ? "arm64" : "x86_64".equals(a) ? "amd64" : a;
  }
}

package dev.lazypull.cli;

import dev.lazypull.blob.ImageSource;
import dev.lazypull.config.ConfigException;
import dev.lazypull.copy.ImageCopier;
import dev.lazypull.copy.OciLayoutTarget;
import dev.lazypull.copy.RegistryTarget;
import dev.lazypull.image.ImageReference;
import dev.lazypull.registry.RegistryClient;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull copy SRC DST}: an image between OCI layouts and registries, missing blobs only,
 * manifest last.
 */
@Command(
    name = "copy",
    mixinStandardHelpOptions = true,
    description =
        "Copy an image between an OCI layout (oci:DIR[:TAG]) and a registry (HOST/REPO[:TAG]), in either "
            + "direction: blobs the destination lacks (cross-repository mounts within one registry), then the "
            + "manifest, byte for byte.")
final class CopyCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "SRC",
      description = "oci:DIR[:TAG] or HOST/REPO[:TAG|@DIGEST].")
  String source;

  @Parameters(index = "1", paramLabel = "DST", description = "oci:DIR[:TAG] or HOST/REPO[:TAG].")
  String destination;

  @Option(
      names = {"-q", "--quiet"},
      description = "Print only the manifest digest.")
  boolean quiet;

  @Mixin RegistryOptions registry;

  @Override
  public Integer call() throws Exception {
    RegistryClient client;
    ImageReference dst;
    try {
      client = registry.client();
      dst = ImageReference.parse(destination);
    } catch (ConfigException | IllegalArgumentException e) {
      System.err.println("lazypull copy: " + e.getMessage());
      return 2;
    }
    try (client) {
      ImageSource src = RegistryOptions.sources(client).open(source);
      ImageCopier.Target target =
          dst instanceof ImageReference.OciLayout oci
              ? new OciLayoutTarget(oci.dir(), oci.tag())
              : new RegistryTarget(client.pusher(), (ImageReference.Registry) dst);
      ImageCopier.Result r =
          ImageCopier.copy(src, target, quiet ? line -> {} : System.out::println);
      if (quiet) {
        System.out.println(r.manifest().digest());
      } else {
        System.out.printf(
            "copied %d blobs (%s), %d already present: %s%n",
            r.blobsCopied(), Units.human(r.bytesCopied()), r.blobsPresent(), r.target());
      }
      return 0;
    }
  }
}

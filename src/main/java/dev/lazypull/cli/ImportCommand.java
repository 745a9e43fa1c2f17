package dev.lazypull.cli;

import dev.lazypull.blob.ImageSource;
import dev.lazypull.catalog.ImageRegistrar;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.oci.OciLayoutWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull import BOOTSTRAP [BLOB...] --output oci:DIR[:TAG]}: wraps an existing EROFS image (for example
 * from {@code mkfs.erofs [--blobdev BLOB]}) as a lazypull OCI image, unchanged.
 */
@Command(name = "import", mixinStandardHelpOptions = true,
    description = "Wrap an existing EROFS image (bootstrap plus optional data blobs in device order, e.g. from "
        + "mkfs.erofs --blobdev) as a lazypull image in an OCI layout.")
final class ImportCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "BOOTSTRAP", description = "The EROFS image (metadata, device 0).")
  Path bootstrap;

  @Parameters(index = "1..*", paramLabel = "BLOB", description = "Data blobs for device 1, 2, ….")
  List<Path> blobs = new ArrayList<>();

  @Option(names = "--output", required = true, paramLabel = "oci:DIR[:TAG]", description = "Where to write it.")
  String output;

  @Override
  public Integer call() throws Exception {
    ImageReference ref = ImageReference.parse(output);
    if (!(ref instanceof ImageReference.OciLayout oci)) {
      System.err.println("lazypull import: --output must be oci:DIR[:TAG]");
      return 2;
    }
    OciLayoutWriter writer = new OciLayoutWriter(oci.dir());
    Descriptor boot = writer.putBlob(bootstrap, MediaTypes.EROFS_BOOTSTRAP);
    List<Descriptor> data = new ArrayList<>();
    for (Path b : blobs) {
      data.add(writer.putBlob(b, MediaTypes.EROFS_BLOB));
    }
    List<Descriptor> layers = new ArrayList<>();
    layers.add(boot);
    layers.addAll(data);
    Descriptor config = writer.putBlob(LazyManifests.minimalConfig(layers), MediaTypes.OCI_CONFIG);
    Manifest manifest = LazyManifests.manifest(config, boot, data, Map.of());
    Descriptor m = writer.putBlob(Json.write(manifest), MediaTypes.OCI_MANIFEST);
    writer.tag(m, oci.tag());
    // Check what we wrote the way the daemon will read it: layout, header, device count.
    ImageSource source = ImageSources.localOnly().open(output);
    LazyImage img = source.resolve();
    ImageRegistrar.describe(img, ImageRegistrar.readHeader(source, img), null, null);
    System.out.println(m.digest());
    return 0;
  }
}

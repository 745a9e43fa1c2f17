package dev.lazypull.cli;

import dev.lazypull.blob.ImageSource;
import dev.lazypull.catalog.ImageRegistrar;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.compress.Compression;
import dev.lazypull.compress.ZstdCodec;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.oci.OciLayoutWriter;
import dev.lazypull.pack.BlobCompressor;
import dev.lazypull.pack.DiskImporter;
import dev.lazypull.pack.ImageOutput;
import dev.lazypull.pack.OciLayoutOutput;
import dev.lazypull.pack.Progress;
import dev.lazypull.pack.RegistryOutput;
import dev.lazypull.registry.RegistryClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull import BOOTSTRAP [BLOB...] --output oci:DIR[:TAG]}: wraps an existing EROFS image
 * (for example from {@code mkfs.erofs [--blobdev BLOB]}) as a lazypull OCI image. The bootstrap is
 * stored as it is; each data blob either as it is ({@code --compression none}: no chunk digest
 * tables, as before) or as compressed chunks of {@code --chunk-size} with a version 2 chunk digest
 * table (the device and its addresses are unchanged).
 *
 * <p>{@code lazypull import --disk FILE --output oci:DIR[:TAG] | --push REF}: a raw disk image as a
 * one-layer disk image ({@link DiskImporter}), served lazily and verified by {@code lazypull nbd}
 * (read-only or writable).
 */
@Command(
    name = "import",
    mixinStandardHelpOptions = true,
    description = {
      "Wrap an existing EROFS image (bootstrap plus optional data blobs in device order, e.g. from "
          + "mkfs.erofs --blobdev) as a lazypull image in an OCI layout,",
      "or, with --disk, a raw disk image (ext4, a partitioned disk, anything) as a disk image for `lazypull nbd`."
    })
final class ImportCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      arity = "0..1",
      paramLabel = "BOOTSTRAP",
      description = "The EROFS image (metadata, device 0).")
  Path bootstrap;

  @Parameters(index = "1..*", paramLabel = "BLOB", description = "Data blobs for device 1, 2, ….")
  List<Path> blobs = new ArrayList<>();

  @Option(
      names = "--disk",
      paramLabel = "FILE",
      description =
          "Import this raw disk image instead (one layer of "
              + "chunks with its digest table; any size, padded to 4 KiB in the layer).")
  Path disk;

  @Option(names = "--output", paramLabel = "oci:DIR[:TAG]", description = "Where to write it.")
  String output;

  @Option(
      names = "--push",
      paramLabel = "REF",
      description =
          "With --disk: push to this registry reference "
              + "instead, HOST/REPO[:TAG] (blobs the repository has are skipped; the manifest is tagged last).")
  String push;

  @Mixin RegistryOptions registry;

  @Option(
      names = "--compression",
      paramLabel = "ALG",
      description =
          "How data blobs are stored: zstd (in independently compressed chunks, with chunk digest "
              + "tables) or none (the files as they are). Default: ${DEFAULT-VALUE}.")
  String compression = BuildOptions.DEFAULT_COMPRESSION.flag();

  @Option(
      names = "--compression-level",
      paramLabel = "N",
      description = "zstd level (default: " + ZstdCodec.DEFAULT_LEVEL + ").")
  int compressionLevel = ZstdCodec.DEFAULT_LEVEL;

  @Option(
      names = "--chunk-size",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description =
          "With compression: uncompressed bytes per compressed chunk, a multiple of 4K up to 16M "
              + "(default: 1M).")
  long chunkSize = 1 << 20;

  @Override
  public Integer call() throws Exception {
    if ((output == null) == (push == null)) {
      System.err.println("lazypull import: give one of --output oci:DIR[:TAG] and --push REF");
      return 2;
    }
    if (disk != null) {
      return importDisk();
    }
    if (bootstrap == null || push != null) {
      System.err.println(
          "lazypull import: give BOOTSTRAP [BLOB…] --output oci:DIR[:TAG], or --disk FILE");
      return 2;
    }
    ImageReference ref = ImageReference.parse(output);
    if (!(ref instanceof ImageReference.OciLayout oci)) {
      System.err.println("lazypull import: --output must be oci:DIR[:TAG]");
      return 2;
    }
    Compression comp = BuildOptions.checkedCompression(compression, compressionLevel);
    if (chunkSize <= 0 || chunkSize % 4096 != 0 || chunkSize > (16 << 20)) {
      throw new IllegalArgumentException(
          "--chunk-size must be a multiple of 4K up to 16M: " + chunkSize);
    }
    OciLayoutWriter writer = new OciLayoutWriter(oci.dir());
    Descriptor boot = writer.putBlob(bootstrap, MediaTypes.EROFS_BOOTSTRAP);
    List<Descriptor> data = new ArrayList<>();
    List<Descriptor> tables = new ArrayList<>();
    List<String> diffIds = new ArrayList<>();
    diffIds.add(boot.digest().toString());
    for (Path b : blobs) {
      if (comp == Compression.NONE) {
        Descriptor d = writer.putBlob(b, MediaTypes.EROFS_BLOB);
        data.add(d);
        diffIds.add(d.digest().toString());
        continue;
      }
      Path scratch = writer.newScratchFile();
      try {
        BlobCompressor.Compressed c =
            BlobCompressor.compress(b, scratch, (int) chunkSize, compressionLevel);
        writer.putScratch(scratch, MediaTypes.EROFS_BLOB_ZSTD, c.digest());
        data.add(c.descriptor());
        diffIds.add(c.uncompressedDigest().toString());
        tables.add(writer.putBlob(c.table().encode(), MediaTypes.CHUNK_DIGESTS));
      } finally {
        Files.deleteIfExists(scratch);
      }
    }
    for (Descriptor t : tables) {
      diffIds.add(t.digest().toString());
    }
    Descriptor config =
        writer.putBlob(LazyManifests.minimalConfigWithDiffIds(diffIds), MediaTypes.OCI_CONFIG);
    Manifest manifest =
        tables.isEmpty()
            ? LazyManifests.manifest(config, boot, data, Map.of())
            : LazyManifests.manifest(config, boot, data, tables, Map.of());
    Descriptor m = writer.putBlob(Json.write(manifest), MediaTypes.OCI_MANIFEST);
    writer.tag(m, oci.tag());
    // Check what we wrote the way the daemon will read it: layout, header, device count.
    ImageSource source = ImageSources.localOnly().open(output);
    LazyImage img = source.resolve();
    ImageRegistrar.describe(img, ImageRegistrar.readHeader(source, img), null, null);
    System.out.println(m.digest());
    return 0;
  }

  private Integer importDisk() throws Exception {
    if (bootstrap != null) {
      System.err.println("lazypull import: --disk takes no BOOTSTRAP or BLOB arguments");
      return 2;
    }
    if (!Files.isRegularFile(disk) && !Files.isSymbolicLink(disk)) {
      System.err.println("lazypull import: " + disk + " is not a file");
      return 2;
    }
    Compression comp = BuildOptions.checkedCompression(compression, compressionLevel);
    if (chunkSize <= 0 || chunkSize % 4096 != 0 || chunkSize > (16 << 20)) {
      throw new IllegalArgumentException(
          "--chunk-size must be a multiple of 4K up to 16M: " + chunkSize);
    }
    ImageReference dst = BuildOptions.parseReference(push != null ? push : output);
    if (push != null && !(dst instanceof ImageReference.Registry)) {
      System.err.println(
          "lazypull import: --push wants a registry reference (HOST/REPO[:TAG]); use --output for "
              + push);
      return 2;
    }
    if (output != null && !(dst instanceof ImageReference.OciLayout)) {
      System.err.println(
          "lazypull import: --output must be oci:DIR[:TAG]; use --push for " + output);
      return 2;
    }
    RegistryClient client = push != null ? registry.client() : null;
    try (ImageOutput out =
        dst instanceof ImageReference.OciLayout oci
            ? new OciLayoutOutput(oci.dir(), oci.tag())
            : new RegistryOutput(
                client.pusher(),
                (ImageReference.Registry) dst,
                scratchRoot(),
                null,
                Progress.silent())) {
      DiskImporter.Imported imported =
          DiskImporter.importDisk(disk, out, comp, (int) chunkSize, compressionLevel);
      out.publish(imported.manifest());
      System.out.println(imported.manifest().digest());
    } finally {
      if (client != null) {
        client.close();
      }
    }
    return 0;
  }

  private static Path scratchRoot() {
    String env = System.getenv("TMPDIR");
    return Path.of(env != null && !env.isBlank() ? env : "/var/tmp");
  }
}

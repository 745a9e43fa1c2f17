package dev.lazypull.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.app.BlobByteSource;
import dev.lazypull.app.Images;
import dev.lazypull.blob.ImageSource;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageRegistrar;
import dev.lazypull.config.ConfigException;
import dev.lazypull.erofs.BootstrapHeader;
import dev.lazypull.erofs.DeviceSlot;
import dev.lazypull.erofs.ErofsFormatException;
import dev.lazypull.erofs.ErofsReader;
import dev.lazypull.erofs.ImageSummary;
import dev.lazypull.erofs.Superblock;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.registry.RegistryClient;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull inspect IMAGE}: manifest, bootstrap superblock, file system summary (inodes,
 * files, chunks, dedup ratio; from a walk of the bootstrap read by range), device table, blobs and
 * chunk digest tables.
 */
@Command(
    name = "inspect",
    mixinStandardHelpOptions = true,
    description = "Show an image's manifest, bootstrap summary, device table and blobs.")
final class InspectCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "IMAGE",
      description = "oci:DIR[:TAG] or HOST/REPO[:TAG|@DIGEST].")
  String image;

  @Option(names = "--json", description = "Machine-readable output.")
  boolean json;

  @Mixin RegistryOptions registry;

  @Override
  public Integer call() throws Exception {
    RegistryClient client;
    try {
      client = registry.client();
    } catch (ConfigException e) {
      System.err.println("lazypull inspect: " + e.getMessage());
      return 2;
    }
    ImageSource source = RegistryOptions.sources(client).open(image);
    Images.Resolved resolved = Images.resolve(source, image);
    if (resolved.disk() != null) {
      DiskInspection.print(resolved.disk(), json, System.out);
      return 0;
    }
    LazyImage img = resolved.lazy();
    BootstrapHeader header = ImageRegistrar.readHeader(source, img);
    ImageRecord record = ImageRegistrar.describe(img, header, null, null);
    Superblock sb = header.superblock();
    ImageSummary summary = null;
    try {
      summary =
          ImageSummary.of(ErofsReader.open(new BlobByteSource(source.blobs(), img.bootstrap())));
    } catch (
        ErofsFormatException
            e) { // a malformed or unsupported bootstrap: the rest is still worth showing
      System.err.println("lazypull inspect: cannot summarize the bootstrap: " + e.getMessage());
    }
    if (json) {
      ObjectNode out = Json.MAPPER.createObjectNode();
      out.put("reference", img.reference());
      out.put("manifestDigest", img.manifestDigest().toString());
      out.put("defaultFsid", record.fsid());
      out.put("mountOptions", record.mountOptions());
      out.set("bootstrap", Json.MAPPER.valueToTree(img.bootstrap()));
      out.set("blobs", Json.MAPPER.valueToTree(img.blobs()));
      out.set("chunkDigestTables", Json.MAPPER.valueToTree(img.chunkTables()));
      ObjectNode s = out.putObject("superblock");
      s.put("blockSize", sb.blockSize());
      s.put("inodes", sb.inodes());
      s.put("blocks", sb.blocks());
      s.put("rootNid", sb.rootNid());
      s.put("featureCompat", sb.featureCompat());
      s.put("featureIncompat", sb.featureIncompat());
      if (summary != null) {
        putSummary(out.putObject("filesystem"), summary);
      }
      ArrayNode devices = out.putArray("devices");
      for (int i = 0; i < header.devices().size(); i++) {
        DeviceSlot d = header.devices().get(i);
        ObjectNode o =
            devices
                .addObject()
                .put("tag", d.tag())
                .put("blocks", d.blocks())
                .put("mappedBlkaddr", d.mappedBlkaddr());
        if (i < img.blobs().size()) {
          Descriptor blob = img.blobs().get(i);
          o.put("compression", LazyImage.isCompressed(blob) ? "zstd" : "none");
          o.put("storedBytes", blob.size());
          o.put("uncompressedBytes", img.deviceSize(i));
        }
      }
      out.put("dataStoredBytes", storedBytes(img));
      out.put("dataUncompressedBytes", uncompressedBytes(img));
      System.out.println(Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(out));
      return 0;
    }
    System.out.println("image:        " + img.reference());
    System.out.println("manifest:     " + img.manifestDigest());
    System.out.println("default fsid: " + record.fsid());
    System.out.println("mount with:   -o " + record.mountOptions());
    System.out.printf(
        "bootstrap:    %s  %s%n", img.bootstrap().digest(), Units.human(img.bootstrap().size()));
    System.out.printf(
        "superblock:   block size %d, %d inodes, %d blocks, root nid %d, compat 0x%x, incompat 0x%x%n",
        sb.blockSize(),
        sb.inodes(),
        sb.blocks(),
        sb.rootNid(),
        sb.featureCompat(),
        sb.featureIncompat());
    if (summary != null) {
      printSummary(summary);
    }
    System.out.println("devices:      " + header.devices().size());
    for (int i = 0; i < header.devices().size(); i++) {
      DeviceSlot d = header.devices().get(i);
      Descriptor blob = img.blobs().get(i);
      System.out.printf(
          "  device %d: blob %s  %s  tag %s  blocks %d  mapped_blkaddr %d%n",
          i + 1,
          blob.digest(),
          sizes(blob.size(), img.deviceSize(i), LazyImage.isCompressed(blob)),
          d.isTagged() ? "'" + d.tag() + "'" : "(none: mount with device=)",
          d.blocks(),
          d.mappedBlkaddr());
      Descriptor table = img.chunkTable(i);
      if (table != null) {
        System.out.printf(
            "            chunk digests %s  %s%n", table.digest(), Units.human(table.size()));
      }
    }
    if (!img.blobs().isEmpty()) {
      System.out.println(
          "file data:    "
              + sizes(storedBytes(img), uncompressedBytes(img), img.hasCompressedBlobs()));
    }
    System.out.println("total:        " + Units.human(record.totalBytes()) + " stored");
    return 0;
  }

  /** "12.0 MiB stored, zstd of 25.0 MiB (48%)", or just the size of a raw blob. */
  private static String sizes(long stored, long uncompressed, boolean compressed) {
    if (!compressed) {
      return Units.human(stored)
          + (stored == uncompressed
              ? ""
              : " stored, " + Units.human(uncompressed) + " uncompressed");
    }
    return String.format(
        Locale.ROOT,
        "%s stored, zstd of %s uncompressed (%.0f%%)",
        Units.human(stored),
        Units.human(uncompressed),
        uncompressed == 0 ? 100.0 : 100.0 * stored / uncompressed);
  }

  private static long storedBytes(LazyImage img) {
    return img.blobs().stream().mapToLong(Descriptor::size).sum();
  }

  private static long uncompressedBytes(LazyImage img) {
    return img.deviceSizes().stream().mapToLong(Long::longValue).sum();
  }

  private static void putSummary(ObjectNode fs, ImageSummary s) {
    fs.put("inodes", s.inodes());
    fs.put("paths", s.paths());
    fs.put("directories", s.directories());
    fs.put("regularFiles", s.regularFiles());
    fs.put("symlinks", s.symlinks());
    fs.put("otherFiles", s.otherFiles());
    fs.put("fileBytes", s.fileBytes());
    fs.put("chunkSize", s.chunkSize());
    fs.put("chunks", s.chunks());
    fs.put("uniqueChunks", s.uniqueChunks());
    fs.put("holeChunks", s.holes());
    fs.put("dedupRatio", s.dedupRatio());
    fs.put("erofsCompressedFiles", s.compressedFiles());
    fs.put("erofsCompressedStoredBytes", s.compressedStoredBytes());
  }

  private static void printSummary(ImageSummary s) {
    System.out.printf(
        "files:        %d inodes (%d directories, %d regular files, %d symlinks, %d other), %d paths, "
            + "%s of file data%n",
        s.inodes(),
        s.directories(),
        s.regularFiles(),
        s.symlinks(),
        s.otherFiles(),
        s.paths(),
        Units.human(s.fileBytes()));
    System.out.printf(
        Locale.ROOT,
        "chunks:       %d referenced, %d stored, %d holes, chunk size %s, dedup ratio " + "%.2f%n",
        s.chunks(),
        s.uniqueChunks(),
        s.holes(),
        s.chunkSize() == 0 ? "-" : Units.human(s.chunkSize()),
        s.dedupRatio());
    if (s.compressedFiles() > 0) {
      System.out.printf(
          "compressed:   %d files compressed by EROFS (mkfs.erofs -z), %s stored%n",
          s.compressedFiles(), Units.human(s.compressedStoredBytes()));
    }
  }
}

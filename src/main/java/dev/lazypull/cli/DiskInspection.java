package dev.lazypull.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.DiskImage;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import java.io.IOException;
import java.io.PrintStream;

/**
 * What {@code lazypull inspect} shows of a disk image (an imported disk, or a snapshot: the disk
 * plus its diff layers): the manifest alone says it all, nothing else is fetched.
 */
final class DiskInspection {
  private DiskInspection() {}

  static void print(DiskImage disk, boolean json, PrintStream out) throws IOException {
    long stored = disk.disk().size() + disk.diskTable().size();
    long diffBlocks = 0;
    for (DiskImage.Diff d : disk.diffs()) {
      stored += d.map().size() + (d.data() == null ? 0 : d.data().size() + d.table().size());
      diffBlocks += d.blocks();
    }
    String kind = disk.diffs().isEmpty() ? "disk" : "snapshot";
    if (json) {
      ObjectNode o = Json.MAPPER.createObjectNode();
      o.put("reference", disk.reference());
      o.put("manifestDigest", disk.manifestDigest().toString());
      o.put("kind", kind);
      o.put("sizeBytes", disk.size());
      if (disk.parent() != null) {
        o.put("parent", disk.parent());
      }
      o.set("disk", Json.MAPPER.valueToTree(disk.disk()));
      o.put("diskCompression", LazyImage.isCompressed(disk.disk()) ? "zstd" : "none");
      o.set("diskChunkDigestTable", Json.MAPPER.valueToTree(disk.diskTable()));
      ArrayNode diffs = o.putArray("diffs");
      for (DiskImage.Diff d : disk.diffs()) {
        ObjectNode n =
            diffs
                .addObject()
                .put("blocks", d.blocks())
                .put("blockSize", d.blockSize())
                .put("dataBytes", d.blocks() * d.blockSize());
        n.set("map", Json.MAPPER.valueToTree(d.map()));
        if (d.data() != null) {
          n.set("data", Json.MAPPER.valueToTree(d.data()));
          n.set("chunkDigestTable", Json.MAPPER.valueToTree(d.table()));
        }
      }
      o.put("storedBytes", stored);
      out.println(Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(o));
      return;
    }
    out.println("image:        " + disk.reference());
    out.println("manifest:     " + disk.manifestDigest());
    out.println(
        "kind:         "
            + kind
            + " image (a block device: serve it with `lazypull nbd`)"
            + (disk.parent() != null ? ", taken over " + disk.parent() : ""));
    out.println("size:         " + Units.human(disk.size()) + " (" + disk.size() + " bytes)");
    Descriptor d0 = disk.disk();
    out.printf(
        "disk:         %s  %s%s%n",
        d0.digest(),
        Units.human(d0.size()),
        LazyImage.isCompressed(d0) ? " stored, zstd chunks" : "");
    out.printf(
        "              chunk digests %s  %s%n",
        disk.diskTable().digest(), Units.human(disk.diskTable().size()));
    for (int i = 0; i < disk.diffs().size(); i++) {
      DiskImage.Diff d = disk.diffs().get(i);
      out.printf(
          "  diff %d: %d blocks of %d (%s)  map %s%n",
          i + 1,
          d.blocks(),
          d.blockSize(),
          Units.human(d.blocks() * d.blockSize()),
          d.map().digest());
      out.println(
          d.data() == null
              ? "          no data (zeros and trims only)"
              : "          data " + d.data().digest() + "  " + Units.human(d.data().size()));
    }
    if (!disk.diffs().isEmpty()) {
      out.println(
          "diffs:        " + disk.diffs().size() + ", " + diffBlocks + " blocks changed in all");
    }
    out.println("total:        " + Units.human(stored) + " stored");
  }
}

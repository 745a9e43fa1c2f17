package dev.lazypull.app;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.control.ControlServer;
import dev.lazypull.image.Json;
import java.nio.file.Path;

/**
 * The control operations of a {@code lazypull nbd --control SOCKET} process (JSON lines,
 * docs/nbd.md):
 *
 * <ul>
 *   <li>{@code ping} → {@code pid}
 *   <li>{@code fork} {@code name? overlay? listen? blockSize?} → {@code name uri overlay micros}: a
 *       new writable export of the same image, its own overlay, this process's cache;
 *   <li>{@code forks} → {@code forks: [{name uri overlay}]}; {@code unfork} {@code name} → {@code
 *       removed};
 *   <li>{@code flush} {@code fork?} → {@code generation}: the overlay's writes durable;
 *   <li>{@code snapshot} {@code destination squash? chunkSize? level? fork?} → {@code manifest
 *       target line …}: the overlay (the export's own, or a fork's) as a disk image, at a flush
 *       point.
 * </ul>
 */
final class NbdControl implements ControlServer.Handler {
  private final NbdExport export;

  NbdControl(NbdExport export) {
    this.export = export;
  }

  @Override
  public ObjectNode handle(String op, JsonNode r) throws Exception {
    ObjectNode out = Json.MAPPER.createObjectNode();
    switch (op) {
      case "ping" -> out.put("pid", ProcessHandle.current().pid());
      case "fork" -> {
        NbdExport.Fork f =
            export.fork(
                text(r, "name"),
                r.hasNonNull("overlay") ? Path.of(r.get("overlay").asText()) : null,
                text(r, "listen"),
                r.path("blockSize").asInt(0));
        out.put("name", f.name())
            .put("uri", f.uri())
            .put("overlay", f.overlay().dir().toString())
            .put("micros", f.micros());
      }
      case "forks" -> {
        ArrayNode a = out.putArray("forks");
        for (NbdExport.Fork f : export.forks()) {
          a.addObject()
              .put("name", f.name())
              .put("uri", f.uri())
              .put("overlay", f.overlay().dir().toString());
        }
      }
      case "unfork" -> out.put("removed", export.unfork(r.path("name").asText()));
      case "flush" -> {
        var ov = export.overlayOf(text(r, "fork"));
        ov.flush();
        out.put("generation", ov.generation());
      }
      case "snapshot" -> {
        String dst = text(r, "destination");
        if (dst == null) {
          throw new IllegalArgumentException(
              "snapshot needs a destination (oci:DIR[:TAG] or a registry reference)");
        }
        String tmp = System.getenv("TMPDIR");
        Snapshots.Result res =
            export.snapshot(
                text(r, "fork"),
                new Snapshots.Options(
                    dst,
                    r.path("squash").asBoolean(false),
                    (int) r.path("chunkSize").asLong(1 << 20),
                    r.path("level").asInt(3),
                    Path.of(tmp != null && !tmp.isBlank() ? tmp : "/var/tmp")));
        out.put("manifest", res.manifest().toString())
            .put("target", res.target())
            .put("line", res.line())
            .put("dataBlocks", res.dataBlocks())
            .put("zeroBlocks", res.zeroBlocks())
            .put("storedBytes", res.storedBytes());
      }
      default ->
          throw new IllegalArgumentException(
              "unknown op '" + op + "' (ping, fork, forks, unfork, flush, " + "snapshot)");
    }
    return out;
  }

  private static String text(JsonNode r, String field) {
    return r.hasNonNull(field) ? r.get(field).asText() : null;
  }
}

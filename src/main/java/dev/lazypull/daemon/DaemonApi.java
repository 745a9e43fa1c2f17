package dev.lazypull.daemon;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageRegistrar;
import dev.lazypull.control.ControlServer;
import dev.lazypull.image.Json;
import java.util.Map;

/** The daemon's control API operations (docs/control-api.md). */
public final class DaemonApi implements ControlServer.Handler {
  private final ImageRegistrar registrar;
  private final Catalog catalog;
  private final OndemandDaemon daemon;

  public DaemonApi(ImageRegistrar registrar, Catalog catalog, OndemandDaemon daemon) {
    this.registrar = registrar;
    this.catalog = catalog;
    this.daemon = daemon;
  }

  @Override
  public ObjectNode handle(String op, JsonNode req) throws Exception {
    switch (op) {
      case "ping":
        return Json.MAPPER.createObjectNode().put("version", dev.lazypull.Version.VERSION);
      case "register": {
        String image = text(req, "image", true);
        ImageRecord r = registrar.register(image, text(req, "fsid", false), text(req, "domain", false),
            req.path("replace").asBoolean(false));
        ObjectNode out = Json.MAPPER.createObjectNode();
        out.set("image", describe(r));
        return out;
      }
      case "unregister": {
        String fsid = text(req, "fsid", true);
        return Json.MAPPER.createObjectNode().put("removed", catalog.unregister(fsid).isPresent());
      }
      case "list": {
        ArrayNode images = Json.MAPPER.createArrayNode();
        for (ImageRecord r : catalog.list()) {
          images.add(describe(r));
        }
        ObjectNode out = Json.MAPPER.createObjectNode();
        out.set("images", images);
        return out;
      }
      case "status": {
        ObjectNode out = Json.MAPPER.createObjectNode();
        ObjectNode stats = out.putObject("stats");
        for (Map.Entry<String, Long> e : daemon.stats().snapshot().entrySet()) {
          stats.put(e.getKey(), e.getValue());
        }
        out.put("images", catalog.list().size());
        out.set("objects", Json.MAPPER.valueToTree(daemon.objectStatus()));
        return out;
      }
      default:
        throw new IllegalArgumentException("unknown op '" + op + "'");
    }
  }

  static ObjectNode describe(ImageRecord r) {
    ObjectNode n = Json.MAPPER.valueToTree(r);
    n.put("mountOptions", r.mountOptions());
    return n;
  }

  private static String text(JsonNode req, String field, boolean required) {
    JsonNode v = req.get(field);
    if (v == null || v.isNull()) {
      if (required) {
        throw new IllegalArgumentException("missing \"" + field + "\"");
      }
      return null;
    }
    if (!v.isTextual()) {
      throw new IllegalArgumentException("\"" + field + "\" must be a string");
    }
    return v.asText();
  }
}

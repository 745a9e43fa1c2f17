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
  private final CacheJanitor janitor;

  public DaemonApi(ImageRegistrar registrar, Catalog catalog, OndemandDaemon daemon, CacheJanitor janitor) {
    this.registrar = registrar;
    this.catalog = catalog;
    this.daemon = daemon;
    this.janitor = janitor;
  }

  @Override
  public ObjectNode handle(String op, JsonNode req) throws Exception {
    switch (op) {
      case "ping":
        return Json.MAPPER.createObjectNode().put("version", dev.lazypull.Version.VERSION)
            .put("pid", ProcessHandle.current().pid());
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
        ObjectNode out = Json.MAPPER.createObjectNode().put("pid", ProcessHandle.current().pid());
        ObjectNode stats = out.putObject("stats");
        for (Map.Entry<String, Long> e : daemon.stats().snapshot().entrySet()) {
          stats.put(e.getKey(), e.getValue());
        }
        out.put("images", catalog.list().size());
        out.set("objects", Json.MAPPER.valueToTree(daemon.objectStatus()));
        out.putObject("cache").put("usageBytes", janitor.usage()).put("budgetBytes", janitor.budget());
        return out;
      }
      case "gc": {
        ObjectNode out = Json.MAPPER.createObjectNode();
        long budget = req.has("budget") ? req.get("budget").asLong(-1) : janitor.budget();
        if (budget < 0) {
          throw new IllegalArgumentException("\"budget\" must be a byte count >= 0");
        }
        out.set("report", Json.MAPPER.valueToTree(janitor.collect(budget)));
        return out;
      }
      case "evict": {
        String id = text(req, "image", true);
        ImageRecord r = catalog.get(id).orElseGet(() -> catalog.list().stream()
            .filter(x -> x.reference().equals(id) || x.reference().equals("oci:" + id)).findFirst().orElse(null));
        if (r == null) {
          throw new IllegalArgumentException("no registered image with fsid or reference '" + id + "'");
        }
        ObjectNode out = Json.MAPPER.createObjectNode().put("fsid", r.fsid());
        out.set("report", Json.MAPPER.valueToTree(janitor.evict(r, catalog.list(),
            req.path("includeShared").asBoolean(false))));
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

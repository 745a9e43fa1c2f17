package dev.lazypull.app;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.Version;
import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageRegistrar;
import dev.lazypull.control.ControlServer;
import dev.lazypull.erofs.ByteSource;
import dev.lazypull.fanotify.FanotifyFrontend;
import dev.lazypull.frontend.CacheKeeper;
import dev.lazypull.frontend.ServedBlob;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.PullOptions;
import dev.lazypull.prefetch.PathRanges;
import dev.lazypull.prefetch.PrefetchManager;
import dev.lazypull.prefetch.PrefetchPolicy;
import dev.lazypull.prefetch.Prefetcher;
import dev.lazypull.registry.Platform;
import dev.lazypull.sys.Mounts;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** The daemon's control API operations (docs/control-api.md). */
public final class DaemonApi implements ControlServer.Handler {
  private final Daemon daemon;
  private final ImageRegistrar registrar;
  private final Catalog catalog;
  private final CacheKeeper janitor;

  public DaemonApi(Daemon daemon) {
    this.daemon = daemon;
    this.registrar = daemon.registrar();
    this.catalog = daemon.catalog();
    this.janitor = daemon.cacheKeeper();
  }

  @Override
  public ObjectNode handle(String op, JsonNode req) throws Exception {
    switch (op) {
      case "ping":
        return Json.MAPPER
            .createObjectNode()
            .put("version", Version.VERSION)
            .put("pid", ProcessHandle.current().pid())
            .put("frontend", daemon.frontend().name());
      case "register":
        {
          String image = text(req, "image", true);
          ImageRecord r =
              registrar.register(
                  image,
                  text(req, "fsid", false),
                  text(req, "domain", false),
                  req.path("replace").asBoolean(false),
                  pullOptions(req),
                  req.path("indexLocally").asBoolean(false));
          String policy = text(req, "prefetch", false);
          if (policy != null) {
            prefetchManager().setPolicy(r.fsid(), PrefetchPolicy.parse(policy));
          }
          ObjectNode out = Json.MAPPER.createObjectNode();
          out.set("image", describe(r));
          out.set("mount", mountFor(r));
          return out;
        }
      case "mounted":
        { // a client made the mount it registered for: the image no longer waits for it
          if (daemon.fanotify() != null) {
            daemon.fanotify().mountSettled(text(req, "fsid", true));
          }
          return Json.MAPPER.createObjectNode();
        }
      case "unmounted":
        { // a client unmounted something (or failed to mount "fsid"): stop serving what no mount
          // uses
          ObjectNode out = Json.MAPPER.createObjectNode();
          ArrayNode released = out.putArray("released");
          if (daemon.fanotify() != null) {
            String failed = text(req, "fsid", false);
            if (failed != null) {
              daemon.fanotify().mountSettled(failed);
            }
            daemon.fanotify().releaseUnmounted(UNMOUNT_SETTLE).forEach(released::add);
          }
          return out;
        }
      case "unregister":
        {
          String fsid = text(req, "fsid", true);
          return Json.MAPPER
              .createObjectNode()
              .put("removed", catalog.unregister(fsid).isPresent());
        }
      case "list":
        {
          ArrayNode images = Json.MAPPER.createArrayNode();
          for (ImageRecord r : catalog.list()) {
            images.add(describe(r));
          }
          ObjectNode out = Json.MAPPER.createObjectNode();
          out.set("images", images);
          return out;
        }
      case "status":
        {
          ObjectNode out =
              Json.MAPPER
                  .createObjectNode()
                  .put("pid", ProcessHandle.current().pid())
                  .put("frontend", daemon.frontend().name());
          ObjectNode stats = out.putObject("stats");
          for (Map.Entry<String, Long> e : daemon.frontend().stats().snapshot().entrySet()) {
            stats.put(e.getKey(), e.getValue());
          }
          for (Map.Entry<String, Long> e : daemon.fetchStats().snapshot().entrySet()) {
            stats.put(e.getKey(), e.getValue());
          }
          List<ImageRecord> registered = catalog.list();
          out.put("images", registered.size());
          ArrayNode list = out.putArray("registered");
          for (ImageRecord r : registered) {
            ObjectNode n = list.addObject().put("fsid", r.fsid()).put("reference", r.reference());
            if (r.pull() != null) {
              n.set("pull", Json.MAPPER.valueToTree(r.pull()));
            }
          }
          ArrayNode objects = out.putArray("objects");
          for (ServedBlob b : daemon.frontend().served()) {
            objects
                .addObject()
                .put("id", b.id())
                .put("fsid", b.binding().image().fsid())
                .put("deviceId", b.binding().deviceId())
                .put("blob", b.binding().blob().digest().toString())
                .put("readyBytes", b.readyBytes())
                .put("size", LazyImage.deviceSize(b.binding().blob()));
          }
          out.putObject("cache")
              .put("usageBytes", janitor.usage())
              .put("budgetBytes", janitor.budget());
          return out;
        }
      case "gc":
        {
          ObjectNode out = Json.MAPPER.createObjectNode();
          long budget = req.has("budget") ? req.get("budget").asLong(-1) : janitor.budget();
          if (budget < 0) {
            throw new IllegalArgumentException("\"budget\" must be a byte count >= 0");
          }
          out.set("report", Json.MAPPER.valueToTree(janitor.collect(budget)));
          return out;
        }
      case "evict":
        {
          ImageRecord r = findImage(text(req, "image", true));
          ObjectNode out = Json.MAPPER.createObjectNode().put("fsid", r.fsid());
          out.set(
              "report",
              Json.MAPPER.valueToTree(
                  janitor.evict(r, catalog.list(), req.path("includeShared").asBoolean(false))));
          return out;
        }
      case "prefetch":
        {
          PrefetchManager pm = prefetchManager();
          PullOptions asked = pullOptions(req);
          ImageRecord r =
              withPull(
                  findImage(text(req, "image", true), asked == null ? null : asked.platform()),
                  asked);
          List<ServedBlob> objects = daemon.servedOf(r.fsid());
          if (objects.isEmpty()) {
            throw new IllegalArgumentException(
                r.fsid()
                    + " is not mounted: prefetch writes through the blobs the "
                    + "front end serves, which exist only while the image is mounted (mount it first, or use "
                    + "`lazypull prefetch --standalone`)");
          }
          List<Prefetcher.Target> targets = new ArrayList<>();
          List<String> globs = new ArrayList<>();
          req.path("paths").forEach(p -> globs.add(p.asText()));
          ObjectNode matched = null;
          if (globs.isEmpty()) {
            for (ServedBlob o : objects) {
              targets.add(new Prefetcher.Target(o, null));
            }
          } else {
            PathRanges.Result ranges = PathRanges.of(bootstrapBytes(r), globs);
            if (ranges.files() == 0) {
              throw new IllegalArgumentException("no file of " + r.fsid() + " matches " + globs);
            }
            for (ServedBlob o : objects) {
              List<long[]> rs = ranges.byDevice().get(o.binding().deviceId());
              if (rs != null) {
                targets.add(new Prefetcher.Target(o, rs));
              }
            }
            matched =
                Json.MAPPER
                    .createObjectNode()
                    .put("files", ranges.files())
                    .put("bytes", ranges.bytes());
          }
          pm.prefetcher().start("manual:" + r.fsid(), r.fsid(), targets);
          ObjectNode out = prefetchStatus(pm, r);
          if (matched != null) {
            out.set("matched", matched);
          }
          return out;
        }
      case "prefetch-status":
        {
          ImageRecord r = findImage(text(req, "image", true));
          PrefetchManager pm = prefetchManager();
          long start = System.nanoTime();
          awaitJobs(pm, r, req.path("waitMillis").asLong(0));
          return prefetchStatus(pm, r).put("waitedMillis", (System.nanoTime() - start) / 1_000_000);
        }
      case "prefetch-stop":
        {
          ImageRecord r = findImage(text(req, "image", true));
          return Json.MAPPER
              .createObjectNode()
              .put("cancelled", prefetchManager().prefetcher().cancel(r.fsid()));
        }
      case "prefetch-policy":
        {
          ImageRecord r = findImage(text(req, "image", true));
          String policy = text(req, "policy", false);
          prefetchManager()
              .setPolicy(r.fsid(), policy == null ? null : PrefetchPolicy.parse(policy));
          return Json.MAPPER
              .createObjectNode()
              .put("fsid", r.fsid())
              .put("policy", prefetchManager().policyOf(r.fsid()).text());
        }
      default:
        throw new IllegalArgumentException("unknown op '" + op + "'");
    }
  }

  /**
   * A release right after an unmount may not take an image prepared this long ago (its mount may
   * follow).
   */
  private static final Duration UNMOUNT_SETTLE = Duration.ofSeconds(5);

  /**
   * How a client mounts {@code r} with this daemon's front end: fscache — source {@code none} and
   * {@code fsid=} options; fanotify — the image prepared (bootstrap fetched whole, data files
   * marked), source the bootstrap file and {@code device=} its data files.
   */
  private ObjectNode mountFor(ImageRecord r) throws IOException {
    ObjectNode m =
        Json.MAPPER
            .createObjectNode()
            .put("type", "erofs")
            .put("frontend", daemon.frontend().name());
    if (daemon.fanotify() == null) {
      return m.put("source", "none").put("options", r.mountOptions());
    }
    FanotifyFrontend.Prepared p = daemon.fanotify().prepare(r.fsid());
    return m.put("source", p.bootstrap().toString())
        .put("options", Mounts.erofsOptions(p.devices(), null));
  }

  /**
   * The request's per-image registry settings ({@code "pull": {"plainHttp": bool, "platform":
   * "os/arch"}}), or null when it has none. Only root reaches the control socket, so honouring
   * plain HTTP for an image is its call.
   */
  static PullOptions pullOptions(JsonNode req) {
    JsonNode p = req.get("pull");
    if (p == null || p.isNull()) {
      return null;
    }
    if (!p.isObject()) {
      throw new IllegalArgumentException("\"pull\" must be an object");
    }
    JsonNode plain = p.get("plainHttp");
    if (plain != null && !plain.isNull() && !plain.isBoolean()) {
      throw new IllegalArgumentException("\"pull.plainHttp\" must be a boolean");
    }
    String platform = text(p, "platform", false);
    if (platform != null) {
      Platform.parse(platform); // refused here, not after a manifest round trip
    }
    return new PullOptions(plain != null && plain.asBoolean(false), platform);
  }

  /**
   * An image acted on with registry settings (prefetch through the daemon): plain HTTP is added to
   * the image's settings (persisted and applied to its registry); a platform must be the one it was
   * registered for.
   */
  private ImageRecord withPull(ImageRecord r, PullOptions asked) throws IOException {
    if (asked == null) {
      return r;
    }
    String registered = r.pullOptions().platform();
    if (asked.platform() != null && !asked.platform().equals(registered)) {
      throw new IllegalArgumentException(
          r.fsid()
              + " ("
              + r.reference()
              + ") is registered for "
              + (registered == null
                  ? "the daemon's default platform (registry.platform)"
                  : "platform " + registered)
              + ", not "
              + asked.platform()
              + "; mount it with --platform "
              + asked.platform()
              + " first");
    }
    if (!asked.plainHttp() || r.pullOptions().plainHttp() || r.reference().startsWith("oci:")) {
      return r;
    }
    return registrar.addPlainHttp(r);
  }

  private ImageRecord findImage(String id) {
    return findImage(id, null);
  }

  /** By fsid, else by reference (with {@code platform}: preferably one registered for it). */
  private ImageRecord findImage(String id, String platform) {
    return catalog
        .get(id)
        .orElseGet(
            () ->
                catalog.list().stream()
                    .filter(x -> x.reference().equals(id) || x.reference().equals("oci:" + id))
                    .min(
                        Comparator.comparing(
                            x -> platform == null || !platform.equals(x.pullOptions().platform())))
                    .orElseThrow(
                        () ->
                            new IllegalArgumentException(
                                "no registered image with fsid or reference '" + id + "'")));
  }

  private ByteSource bootstrapBytes(ImageRecord r) throws IOException {
    if (r.bootstrap().size() > PathRanges.MAX_BOOTSTRAP_BYTES) {
      throw new IllegalArgumentException(
          "bootstrap of "
              + r.fsid()
              + " is "
              + r.bootstrap().size()
              + " bytes, too large to resolve paths (limit "
              + PathRanges.MAX_BOOTSTRAP_BYTES
              + ")");
    }
    byte[] bytes =
        registrar
            .sources()
            .open(r.reference())
            .readRange(r.bootstrap(), 0, (int) r.bootstrap().size());
    return ByteSource.of(bytes);
  }

  private PrefetchManager prefetchManager() {
    PrefetchManager pm = daemon.prefetch();
    if (pm == null) {
      throw new IllegalArgumentException("prefetch is not enabled in this daemon");
    }
    return pm;
  }

  /** Longest {@code waitMillis} of one {@code prefetch-status} call (a client asks again). */
  private static final long MAX_STATUS_WAIT_MILLIS = 60_000;

  /**
   * Blocks this control connection's thread until the image's prefetch jobs are all done or {@code
   * waitMillis} (capped) has passed, so {@code prefetch --wait} returns the moment its job ends
   * rather than at its next poll.
   */
  private static void awaitJobs(PrefetchManager pm, ImageRecord r, long waitMillis)
      throws InterruptedException {
    long wait = Math.min(Math.max(0, waitMillis), MAX_STATUS_WAIT_MILLIS);
    if (wait == 0) {
      return;
    }
    CompletableFuture<?>[] running =
        pm.prefetcher().jobsOf(r.fsid()).stream()
            .map(j -> j.done)
            .filter(f -> !f.isDone())
            .toArray(CompletableFuture<?>[]::new);
    try {
      CompletableFuture.allOf(running).get(wait, TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      // still running: the caller shows progress and asks again
    } catch (ExecutionException e) {
      // a job's outcome is in its status (done never completes exceptionally)
    }
  }

  private ObjectNode prefetchStatus(PrefetchManager pm, ImageRecord r) {
    ObjectNode out =
        Json.MAPPER
            .createObjectNode()
            .put("fsid", r.fsid())
            .put("policy", pm.policyOf(r.fsid()).text());
    long ready = 0;
    List<ServedBlob> objects = daemon.servedOf(r.fsid());
    for (ServedBlob o : objects) {
      ready += o.readyBytes();
    }
    out.put("readyBytes", ready)
        .put("totalBytes", r.totalBytes())
        .put("mounted", !objects.isEmpty());
    ArrayNode jobs = out.putArray("jobs");
    boolean running = false;
    for (Prefetcher.Job j : pm.prefetcher().jobsOf(r.fsid())) {
      running |= !j.done.isDone();
      ObjectNode n =
          jobs.addObject()
              .put("id", j.id)
              .put("state", j.state())
              .put("plannedBytes", j.plannedBytes.get())
              .put("doneBytes", j.doneBytes.get())
              .put("failedBytes", j.failedBytes.get());
      if (j.error != null) {
        n.put("error", j.error);
      }
    }
    out.put("running", running);
    return out;
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

package dev.lazypull.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.control.ControlClient;
import dev.lazypull.image.ImageReference;
import java.io.Console;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull prefetch IMAGE}: fetch a mounted image's data ahead of its readers, through the
 * daemon — afterwards cold reads send no READ at all — or, with {@code --standalone} (or when no
 * daemon runs), into the NBD blob cache, so a later {@code lazypull nbd} of the image fetches
 * nothing.
 */
@Command(
    name = "prefetch",
    mixinStandardHelpOptions = true,
    description = {
      "Fetch a mounted image's data in the background through the running daemon (behind on-demand "
          + "reads, within the configured concurrency and bandwidth caps). Exit code 0 when --wait sees it complete.",
      "With --standalone, or when no daemon socket exists: fetch the image into the NBD blob cache "
          + "(--cache-dir, default [nbd] cache_dir) now and wait; exit code 0 when everything asked for is "
          + "cached (and verified, for images with chunk digest tables)."
    })
final class PrefetchCommand implements Callable<Integer> {
  @Mixin SocketOption socket;

  @Parameters(
      index = "0",
      paramLabel = "IMAGE",
      description =
          "fsid or image reference as registered; standalone: oci:DIR[:TAG] or HOST/REPO[:TAG|@DIGEST].")
  String image;

  @Option(
      names = "--standalone",
      description = "Prefetch into the NBD blob cache without the daemon.")
  boolean standalone;

  @Option(
      names = "--cache-dir",
      paramLabel = "DIR",
      description =
          "Standalone: the host cache to fill (default: [nbd] cache_dir, /var/cache/lazypull).")
  Path cacheDir;

  @Mixin RegistryOptions registry;

  @Option(names = "--all", description = "Prefetch every blob of the image (the default action).")
  boolean all;

  @Option(
      names = "--path",
      paramLabel = "GLOB",
      description = "Only files matching this glob (repeatable), e.g. '/usr/bin/*' or '/etc/**'.")
  List<String> paths = new ArrayList<>();

  @Option(
      names = "--wait",
      description = "Wait until done, showing progress; exit non-zero if anything failed.")
  boolean await;

  @Option(names = "--status", description = "Only show the image's prefetch state.")
  boolean status;

  @Option(names = "--stop", description = "Cancel the image's running prefetch.")
  boolean stop;

  @Option(
      names = "--policy",
      paramLabel = "none|all|profile",
      description = "Set what is prefetched whenever the image is mounted.")
  String policy;

  /**
   * Whether {@code image} spells out where an image lives (a registry path or an OCI layout) rather
   * than a name only the daemon can resolve (an fsid, which would otherwise parse as a Docker Hub
   * short name).
   */
  private static boolean isImageReference(String image) {
    if (!image.startsWith("oci:") && !image.contains("/")) {
      return false;
    }
    try {
      ImageReference.parse(image);
      return true;
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  @Override
  public Integer call() throws Exception {
    boolean daemonOnly = status || stop || policy != null;
    if (standalone && daemonOnly) {
      System.err.println(
          "lazypull prefetch: --status, --stop and --policy talk to the daemon; not with --standalone");
      return 2;
    }
    if (all && !paths.isEmpty()) {
      System.err.println("lazypull prefetch: --all and --path exclude each other");
      return 2;
    }
    if (!standalone && !daemonOnly && !Files.exists(socket.socket)) {
      if (!isImageReference(
          image)) { // an fsid names an image the daemon knows: nothing to fall back to
        System.err.println(
            "lazypull prefetch: no daemon socket at "
                + socket.socket
                + " (is the daemon running?); '"
                + image
                + "' is not an image reference to prefetch without it");
        return 1;
      }
      System.err.println(
          "lazypull prefetch: no daemon socket at "
              + socket.socket
              + "; prefetching into the NBD "
              + "cache instead (--standalone)");
      standalone = true;
    }
    if (standalone) {
      return StandalonePrefetchRun.run(this);
    }
    if (registry.config != null) {
      System.err.println(
          "lazypull prefetch: --config is read only with --standalone; the daemon uses its own "
              + "[registry] settings (--plain-http and --platform are sent to it)");
    }
    ControlClient client = new ControlClient(socket.socket);
    if (stop) {
      JsonNode r = client.call(ControlClient.request("prefetch-stop").put("image", image));
      System.out.println("cancelled " + r.path("cancelled").asInt() + " prefetch jobs");
      return 0;
    }
    if (policy != null) {
      JsonNode r =
          client.call(
              ControlClient.request("prefetch-policy").put("image", image).put("policy", policy));
      System.out.println(
          r.path("fsid").asText() + ": prefetch policy " + r.path("policy").asText());
      if (!all && !await) {
        return 0;
      }
    }
    var req = ControlClient.request(status ? "prefetch-status" : "prefetch").put("image", image);
    if (!status) {
      try {
        registry.putPull(
            req); // the daemon applies them to the registered image (plain HTTP kept with it)
      } catch (IllegalArgumentException e) {
        System.err.println("lazypull prefetch: --platform: " + e.getMessage());
        return 2;
      }
    }
    if (!paths.isEmpty()) {
      var arr = req.putArray("paths");
      paths.forEach(arr::add);
    }
    JsonNode s = client.call(req);
    if (s.has("matched")) {
      System.out.println(
          "matched "
              + s.path("matched").path("files").asInt()
              + " files, "
              + Units.human(s.path("matched").path("bytes").asLong()));
    }
    if (!await) {
      print(s, false);
      return 0;
    }
    Console console = System.console();
    while (s.path("running").asBoolean()) {
      print(s, console != null);
      // The daemon answers when the jobs end or after this long (progress): no poll interval is
      // added to the command's time. Terminals redraw often; logs get a line every few seconds.
      s =
          client.call(
              ControlClient.request("prefetch-status")
                  .put("image", image)
                  .put("waitMillis", console != null ? 500 : 5000));
      if (!s.has("waitedMillis")) {
        Thread.sleep(500); // a daemon from before waitMillis answers at once: poll it
      }
    }
    print(s, console != null);
    if (console != null) {
      System.out.println();
    }
    long failed = 0;
    for (JsonNode j : s.path("jobs")) {
      failed += j.path("failedBytes").asLong();
      if (j.has("error")) {
        System.err.println(
            "lazypull prefetch: " + j.path("id").asText() + ": " + j.path("error").asText());
      }
    }
    return failed > 0 ? 1 : 0;
  }

  private static void print(JsonNode s, boolean terminal) {
    print(
        s.path("fsid").asText(),
        s.path("readyBytes").asLong(),
        s.path("totalBytes").asLong(),
        s.path("running").asBoolean(),
        terminal);
  }

  /** One progress report: a redrawn bar on a terminal, a plain line otherwise. */
  static void print(String name, long ready, long totalBytes, boolean running, boolean terminal) {
    long total = Math.max(1, totalBytes);
    int pct = (int) Math.min(100, ready * 100 / total);
    String line =
        String.format(
            Locale.ROOT,
            "%s: %s of %s cached (%d%%)%s",
            name,
            Units.human(ready),
            Units.human(totalBytes),
            pct,
            running ? ", prefetching" : "");
    if (terminal) {
      int width = 30;
      int filled = pct * width / 100;
      System.out.print(
          "\r[" + "#".repeat(filled) + " ".repeat(width - filled) + "] " + line + "   ");
      System.out.flush();
    } else {
      System.out.println(line);
    }
  }
}

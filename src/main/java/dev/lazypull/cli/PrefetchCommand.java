package dev.lazypull.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.control.ControlClient;
import java.io.Console;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull prefetch IMAGE}: fetch a mounted image's data ahead of its readers, through the daemon —
 * afterwards cold reads send no READ at all.
 */
@Command(name = "prefetch", mixinStandardHelpOptions = true,
    description = "Fetch a mounted image's data in the background through the running daemon (behind on-demand "
        + "reads, within the configured concurrency and bandwidth caps). Exit code 0 when --wait sees it complete.")
final class PrefetchCommand implements Callable<Integer> {
  @Mixin SocketOption socket;

  @Parameters(index = "0", paramLabel = "IMAGE", description = "fsid or image reference as registered.")
  String image;

  @Option(names = "--all", description = "Prefetch every blob of the image (the default action).")
  boolean all;

  @Option(names = "--path", paramLabel = "GLOB",
      description = "Only files matching this glob (repeatable), e.g. '/usr/bin/*' or '/etc/**'.")
  java.util.List<String> paths = new java.util.ArrayList<>();

  @Option(names = "--wait", description = "Wait until done, showing progress; exit non-zero if anything failed.")
  boolean await;

  @Option(names = "--status", description = "Only show the image's prefetch state.")
  boolean status;

  @Option(names = "--stop", description = "Cancel the image's running prefetch.")
  boolean stop;

  @Option(names = "--policy", paramLabel = "none|all|profile",
      description = "Set what is prefetched whenever the image is mounted.")
  String policy;

  @Override
  public Integer call() throws Exception {
    ControlClient client = new ControlClient(socket.socket);
    if (stop) {
      JsonNode r = client.call(ControlClient.request("prefetch-stop").put("image", image));
      System.out.println("cancelled " + r.path("cancelled").asInt() + " prefetch jobs");
      return 0;
    }
    if (policy != null) {
      JsonNode r = client.call(ControlClient.request("prefetch-policy").put("image", image).put("policy", policy));
      System.out.println(r.path("fsid").asText() + ": prefetch policy " + r.path("policy").asText());
      if (!all && !await) {
        return 0;
      }
    }
    var req = ControlClient.request(status ? "prefetch-status" : "prefetch").put("image", image);
    if (!paths.isEmpty()) {
      var arr = req.putArray("paths");
      paths.forEach(arr::add);
    }
    JsonNode s = client.call(req);
    if (s.has("matched")) {
      System.out.println("matched " + s.path("matched").path("files").asInt() + " files, "
          + Units.human(s.path("matched").path("bytes").asLong()));
    }
    if (!await) {
      print(s, false);
      return 0;
    }
    Console console = System.console();
    while (s.path("running").asBoolean()) {
      print(s, console != null);
      Thread.sleep(500);
      s = client.call(ControlClient.request("prefetch-status").put("image", image));
    }
    print(s, console != null);
    if (console != null) {
      System.out.println();
    }
    long failed = 0;
    for (JsonNode j : s.path("jobs")) {
      failed += j.path("failedBytes").asLong();
      if (j.has("error")) {
        System.err.println("lazypull prefetch: " + j.path("id").asText() + ": " + j.path("error").asText());
      }
    }
    return failed > 0 ? 1 : 0;
  }

  private static void print(JsonNode s, boolean terminal) {
    long ready = s.path("readyBytes").asLong();
    long total = Math.max(1, s.path("totalBytes").asLong());
    int pct = (int) Math.min(100, ready * 100 / total);
    String line = String.format(Locale.ROOT, "%s: %s of %s cached (%d%%)%s", s.path("fsid").asText(),
        Units.human(ready), Units.human(total), pct, s.path("running").asBoolean() ? ", prefetching" : "");
    if (terminal) {
      int width = 30;
      int filled = pct * width / 100;
      System.out.print("\r[" + "#".repeat(filled) + " ".repeat(width - filled) + "] " + line + "   ");
      System.out.flush();
    } else {
      System.out.println(line);
    }
  }
}

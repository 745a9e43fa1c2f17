package dev.lazypull.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.control.ControlClient;
import dev.lazypull.image.Json;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code lazypull status}: what the running daemon is doing. */
@Command(
    name = "status",
    mixinStandardHelpOptions = true,
    description = "Show the running daemon's counters, " + "open objects and registered images.")
final class StatusCommand implements Callable<Integer> {
  @Mixin SocketOption socket;

  @Option(names = "--json", description = "Print the raw JSON reply.")
  boolean json;

  @Override
  public Integer call() throws Exception {
    JsonNode status = new ControlClient(socket.socket).call(ControlClient.request("status"));
    if (json) {
      System.out.println(Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(status));
      return 0;
    }
    System.out.println("front end:         " + status.path("frontend").asText());
    System.out.println("images registered: " + status.path("images").asLong());
    System.out.println("blobs served:      " + status.path("objects").size());
    long budget = status.path("cache").path("budgetBytes").asLong();
    System.out.println(
        "cache on disk:     "
            + Units.human(status.path("cache").path("usageBytes").asLong())
            + (budget > 0 ? " of " + Units.human(budget) + " budget" : " (no budget)"));
    for (JsonNode r : status.path("registered")) {
      JsonNode pull = r.path("pull");
      StringBuilder how = new StringBuilder();
      if (pull.path("plainHttp").asBoolean(false)) {
        how.append("plain-http");
      }
      if (pull.hasNonNull("platform")) {
        how.append(how.length() > 0 ? ", " : "")
            .append("platform ")
            .append(pull.path("platform").asText());
      }
      System.out.printf(
          "  %-36s %s%s%n",
          r.path("fsid").asText(),
          r.path("reference").asText(),
          how.length() > 0 ? " (" + how + ")" : "");
    }
    for (JsonNode o : status.path("objects")) {
      System.out.printf(
          "  %-12s fsid %-36s device %-3d %s  %s / %s%n",
          o.path("id").asText(),
          o.path("fsid").asText(),
          o.path("deviceId").asInt(),
          o.path("blob").asText().substring(7, 19),
          Units.human(o.path("readyBytes").asLong()),
          Units.human(o.path("size").asLong()));
    }
    for (Iterator<Map.Entry<String, JsonNode>> it = status.path("stats").fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      System.out.printf("%-20s %d%n", e.getKey(), e.getValue().asLong());
    }
    return 0;
  }
}

package dev.lazypull.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.control.ControlClient;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code lazypull fork --control SOCKET [--name N] [--overlay DIR] [--listen ADDR]}: asks a running
 * {@code lazypull nbd --control SOCKET} for a new writable export of its image — an overlay of its
 * own over the same base, sharing that process's cache — and prints the new export's URI; {@code
 * --remove NAME} stops one (its overlay flushed).
 */
@Command(
    name = "fork",
    mixinStandardHelpOptions = true,
    description =
        "Add a writable export of a running `lazypull nbd --control SOCKET`'s image, with an overlay of "
            + "its own over the same base and that process's cache; prints its NBD URI. --remove stops a fork.")
final class ForkCommand implements Callable<Integer> {
  @Option(
      names = "--control",
      required = true,
      paramLabel = "SOCKET",
      description = "The export's control socket.")
  Path control;

  @Option(names = "--name", paramLabel = "NAME", description = "The fork's name (default: fork-N).")
  String name;

  @Option(
      names = "--overlay",
      paramLabel = "DIR",
      description = "Its overlay (default: under the export's " + "overlays_dir).")
  Path overlay;

  @Option(
      names = "--listen",
      paramLabel = "unix:PATH|tcp:HOST:PORT",
      description =
          "Where it listens (default: " + "unix:<control socket's directory>/<name>.sock).")
  String listen;

  @Option(
      names = "--block-size",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description = "Block size of a new overlay (default: 4K).")
  Long blockSize;

  @Option(names = "--remove", paramLabel = "NAME", description = "Stop this fork instead.")
  String remove;

  @Override
  public Integer call() throws Exception {
    ControlClient client = new ControlClient(control);
    if (remove != null) {
      ObjectNode req = ControlClient.request("unfork").put("name", remove);
      boolean removed = client.call(req).path("removed").asBoolean();
      System.out.println(removed ? "removed " + remove : "no fork named " + remove);
      return removed ? 0 : 1;
    }
    ObjectNode req = ControlClient.request("fork");
    if (name != null) {
      req.put("name", name);
    }
    if (overlay != null) {
      req.put("overlay", overlay.toAbsolutePath().toString());
    }
    if (listen != null) {
      req.put("listen", listen);
    }
    if (blockSize != null) {
      req.put("blockSize", blockSize.intValue());
    }
    JsonNode r = client.call(req);
    System.out.println(r.path("uri").asText());
    System.err.println(
        "fork "
            + r.path("name").asText()
            + ": overlay "
            + r.path("overlay").asText()
            + ", ready in "
            + r.path("micros").asLong()
            + " us");
    return 0;
  }
}

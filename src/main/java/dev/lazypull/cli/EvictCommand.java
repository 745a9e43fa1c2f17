package dev.lazypull.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.control.ControlClient;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code lazypull evict IMAGE}: drop one image's cached data (it is fetched again when read). */
@Command(
    name = "evict",
    mixinStandardHelpOptions = true,
    description =
        "Remove an unmounted image's cache files (bootstrap and data blobs); they are fetched again "
            + "on the next read. Blobs shared with other images of the same domain are kept unless --include-shared.")
final class EvictCommand implements Callable<Integer> {
  @Mixin SocketOption socket;

  @Option(
      names = "--include-shared",
      description = "Also evict blobs other registered images share.")
  boolean includeShared;

  @Parameters(
      index = "0",
      paramLabel = "IMAGE",
      description = "fsid or image reference as registered.")
  String image;

  @Override
  public Integer call() throws Exception {
    JsonNode reply =
        new ControlClient(socket.socket)
            .call(
                ControlClient.request("evict")
                    .put("image", image)
                    .put("includeShared", includeShared));
    JsonNode r = reply.path("report");
    System.out.printf(
        "%s: culled %d files (%s); %d in use%s%n",
        reply.path("fsid").asText(),
        r.path("culled").asInt(),
        Units.human(r.path("bytesFreed").asLong()),
        r.path("inUse").asInt(),
        r.path("skipped").size() > 0 ? "; kept " + r.path("skipped") : "");
    return r.path("inUse").asInt() > 0 ? 1 : 0;
  }
}

package dev.lazypull.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.control.ControlClient;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code lazypull gc}: bring the cache within its budget now. */
@Command(name = "gc", mixinStandardHelpOptions = true,
    description = "Cull least-recently-used cache files no mount is using until the cache fits its budget.")
final class GcCommand implements Callable<Integer> {
  @Mixin SocketOption socket;

  @picocli.CommandLine.Option(names = "--budget", paramLabel = "SIZE", converter = Units.SizeConverter.class,
      description = "Shrink to this size now instead of the daemon's configured budget.")
  Long budget;

  @Override
  public Integer call() throws Exception {
    var req = ControlClient.request("gc");
    if (budget != null) {
      req.put("budget", budget);
    }
    JsonNode r = new ControlClient(socket.socket).call(req).path("report");
    System.out.printf("culled %d files (%s); cache %s -> %s, budget %s; %d in use%n", r.path("culled").asInt(),
        Units.human(r.path("bytesFreed").asLong()), Units.human(r.path("usageBefore").asLong()),
        Units.human(r.path("usageAfter").asLong()),
        r.path("budget").asLong() == 0 ? "none" : Units.human(r.path("budget").asLong()), r.path("inUse").asInt());
    return 0;
  }
}

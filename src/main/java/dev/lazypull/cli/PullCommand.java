package dev.lazypull.cli;

import dev.lazypull.config.ConfigException;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.snapshotter.Containerd;
import dev.lazypull.snapshotter.ImagePuller;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull pull IMAGE}: the image in containerd, its layers prepared through a remote
 * snapshotter with CRI's labels (as stargz's {@code ctr-remote image rpull}), so {@code ctr run
 * --snapshotter lazypull IMAGE ID} starts it lazily.
 */
@Command(
    name = "pull",
    mixinStandardHelpOptions = true,
    description =
        "Create IMAGE in containerd and prepare its snapshots lazily with lazypull's snapshotter, so "
            + "`ctr run --snapshotter lazypull IMAGE ID CMD` starts it without downloading it (a non-lazypull image "
            + "is copied into containerd's content store instead, for containerd to unpack).")
final class PullCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "IMAGE",
      description = "HOST/REPO[:TAG|@DIGEST]; the name ctr knows it by.")
  String image;

  @Option(
      names = "--containerd-address",
      paramLabel = "SOCKET",
      defaultValue = "/run/containerd/containerd.sock",
      description = "containerd's gRPC socket (default: ${DEFAULT-VALUE}).")
  Path address;

  @Option(
      names = {"--namespace", "-n"},
      paramLabel = "NS",
      defaultValue = "default",
      description = "containerd namespace (default: ${DEFAULT-VALUE}).")
  String namespace;

  @Option(
      names = "--snapshotter",
      paramLabel = "NAME",
      defaultValue = "lazypull",
      description =
          "The proxy snapshotter's name in containerd's config (default: ${DEFAULT-VALUE}).")
  String snapshotter;

  @Option(
      names = "--timeout",
      paramLabel = "DURATION",
      converter = Units.DurationConverter.class,
      description =
          "Longest wait for one containerd call (preparing the first layer waits for the daemon to "
              + "fetch the image's bootstrap) (default: 5m).")
  Duration timeout = Duration.ofMinutes(5);

  @Mixin RegistryOptions registry;

  @Override
  public Integer call() throws Exception {
    RegistryClient client;
    try {
      client = registry.client();
    } catch (ConfigException e) {
      System.err.println("lazypull pull: " + e.getMessage());
      return 2;
    }
    try (client;
        Containerd containerd = new Containerd(address, namespace, timeout)) {
      ImagePuller.Result r =
          new ImagePuller(containerd, client, snapshotter, System.out).pull(image);
      System.out.println(
          (r.lazy() ? "pulled lazily: " : "pulled: ")
              + r.name()
              + " "
              + r.manifest()
              + " ("
              + r.layers()
              + " layers"
              + (r.lazy()
                  ? ", snapshot " + r.topChainId()
                  : ", " + Units.human(r.bytesCopied()) + " copied")
              + ")");
      return 0;
    } catch (StatusRuntimeException e) {
      System.err.println(
          "lazypull pull: containerd at "
              + address
              + ": "
              + e.getStatus().getCode()
              + (e.getStatus().getDescription() == null
                  ? ""
                  : ": " + e.getStatus().getDescription()));
      return 1;
    }
  }
}

package dev.lazypull.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.app.Snapshots;
import dev.lazypull.compress.ZstdCodec;
import dev.lazypull.config.ConfigException;
import dev.lazypull.control.ControlClient;
import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.image.ImageReference;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code lazypull snapshot (--overlay DIR | --control SOCKET) (--output oci:DIR[:TAG] | --push REF)
 * [--squash]}: writes a writable export's overlay as a disk image (one diff over the base, which is
 * stored or mounted beside it), from a stopped overlay or from a running export at a flush point
 * through its control socket.
 */
@Command(
    name = "snapshot",
    mixinStandardHelpOptions = true,
    description = {
      "Write a writable export's overlay as a disk image: one diff layer of the dirty blocks that are "
          + "not zero (compressed chunks with a digest table) and its block map, over the base disk image, whose "
          + "layers are stored or mounted beside it. Serve it with `lazypull nbd` (read-only or --writable again).",
      "From a stopped overlay (--overlay), or from a running export at a flush point (--control: the export's "
          + "--control socket; writes wait while the blocks are read)."
    })
final class SnapshotCommand implements Callable<Integer> {
  static final class Source {
    @Option(
        names = "--overlay",
        required = true,
        paramLabel = "DIR",
        description = "A stopped export's overlay.")
    Path overlay;

    @Option(
        names = "--control",
        required = true,
        paramLabel = "SOCKET",
        description = "The control socket of a running `lazypull nbd --writable --control SOCKET`.")
    Path control;
  }

  static final class Target {
    @Option(
        names = "--output",
        required = true,
        paramLabel = "oci:DIR[:TAG]",
        description = "Local OCI layout.")
    String output;

    @Option(
        names = "--push",
        required = true,
        paramLabel = "REF",
        description =
            "Push to this registry reference, HOST/REPO[:TAG] (blobs the repository has are skipped, the "
                + "base's mounted from its repository on the same registry; the manifest is tagged last).")
    String push;
  }

  @ArgGroup(exclusive = true, multiplicity = "1")
  Source source;

  @ArgGroup(exclusive = true, multiplicity = "1")
  Target target;

  @Option(
      names = "--squash",
      description = "Fold the base's diffs and the overlay into one diff over the disk.")
  boolean squash;

  @Option(
      names = "--chunk-size",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description =
          "Uncompressed bytes per compressed chunk of the diff, a multiple of 4K up to 16M (default: 1M).")
  long chunkSize = 1 << 20;

  @Option(
      names = "--compression-level",
      paramLabel = "N",
      description = "zstd level (default: " + ZstdCodec.DEFAULT_LEVEL + ").")
  int level = ZstdCodec.DEFAULT_LEVEL;

  @Option(
      names = "--cache-dir",
      paramLabel = "DIR",
      description =
          "The host cache, read through when squashing " + "(default: /var/cache/lazypull).")
  Path cacheDir = NbdSettings.DEFAULT_CACHE_DIR;

  @Option(
      names = "--scratch-dir",
      paramLabel = "DIR",
      description = "Where the diff is staged (default: $TMPDIR, " + "else /var/tmp).")
  Path scratchDir;

  @Mixin RegistryOptions registry;

  @Override
  public Integer call() throws Exception {
    String dst = target.push != null ? target.push : target.output;
    ImageReference ref = BuildOptions.parseReference(dst);
    if (target.push != null && !(ref instanceof ImageReference.Registry)
        || target.output != null && !(ref instanceof ImageReference.OciLayout)) {
      System.err.println(
          "lazypull snapshot: --output wants oci:DIR[:TAG], --push a registry reference: " + dst);
      return 2;
    }
    if (chunkSize <= 0 || chunkSize % 4096 != 0 || chunkSize > (16 << 20)) {
      System.err.println(
          "lazypull snapshot: --chunk-size must be a multiple of 4K up to 16M: " + chunkSize);
      return 2;
    }
    BuildOptions.checkedCompression("zstd", level);
    Path scratch =
        scratchDir != null
            ? scratchDir
            : Path.of(
                System.getenv("TMPDIR") != null && !System.getenv("TMPDIR").isBlank()
                    ? System.getenv("TMPDIR")
                    : "/var/tmp");
    if (source.control != null) {
      ObjectNode req = ControlClient.request("snapshot");
      req.put("destination", dst)
          .put("squash", squash)
          .put("chunkSize", chunkSize)
          .put("level", level);
      JsonNode r = new ControlClient(source.control).call(req);
      if (!r.path("ok").asBoolean()) {
        System.err.println("lazypull snapshot: " + r.path("error").asText());
        return 1;
      }
      System.err.println(r.path("line").asText());
      System.out.println(r.path("manifest").asText());
      return 0;
    }
    Snapshots.Result result;
    try {
      result =
          Snapshots.ofStopped(
              source.overlay,
              new Snapshots.Options(dst, squash, (int) chunkSize, level, scratch),
              registry.registryConfig(),
              cacheDir.toAbsolutePath(),
              FetchSettings.defaults());
    } catch (ConfigException e) {
      System.err.println("lazypull snapshot: " + e.getMessage());
      return 2;
    }
    System.err.println(result.line());
    System.out.println(result.manifest());
    return 0;
  }
}

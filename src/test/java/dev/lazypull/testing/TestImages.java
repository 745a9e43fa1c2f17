package dev.lazypull.testing;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.Json;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.oci.OciLayoutWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds ordinary (non-lazypull) container images in a local OCI layout, as `docker save`-like
 * inputs.
 */
public final class TestImages {
  /**
   * A layer: the tar file as it will be stored (already compressed or not) and its uncompressed
   * tar.
   */
  public record Layer(Path stored, Path tar, String mediaType) {}

  private TestImages() {}

  /**
   * tar (pax, with xattrs) of {@code dir}'s contents ("." and everything below), compressed as
   * asked.
   */
  public static Layer tarOf(Path dir, Path out, String compression, String... members)
      throws IOException, InterruptedException {
    Path tar = out.resolveSibling(out.getFileName() + ".tar");
    List<String> cmd =
        new ArrayList<>(
            List.of(
                "tar",
                "--format=pax",
                "--xattrs",
                "--xattrs-include=*",
                "--numeric-owner",
                "--sort=name",
                "-C",
                dir.toString(),
                "-cf",
                tar.toString()));
    cmd.addAll(members.length == 0 ? List.of(".") : List.of(members));
    Requirements.run(cmd.toArray(String[]::new));
    switch (compression) {
      case "gzip":
        Requirements.run("bash", "-c", "gzip -n -c '" + tar + "' > '" + out + "'");
        return new Layer(out, tar, MediaTypes.OCI_LAYER_TAR_GZIP);
      case "zstd":
        Requirements.run("zstd", "-q", "-f", tar.toString(), "-o", out.toString());
        return new Layer(out, tar, MediaTypes.OCI_LAYER_TAR_ZSTD);
      default:
        Files.copy(tar, out);
        return new Layer(out, tar, MediaTypes.OCI_LAYER_TAR);
    }
  }

  /** Writes an image of these layers (config with Env and diff_ids) and tags it. */
  public static Descriptor write(Path layout, String tag, List<Layer> layers) throws IOException {
    OciLayoutWriter w = new OciLayoutWriter(layout);
    List<Descriptor> descs = new ArrayList<>();
    List<String> diffIds = new ArrayList<>();
    for (Layer l : layers) {
      descs.add(w.putBlob(Files.readAllBytes(l.stored()), l.mediaType()));
      diffIds.add(Digest.of(Files.readAllBytes(l.tar())).toString());
    }
    Map<String, Object> config = new LinkedHashMap<>();
    config.put("architecture", "amd64");
    config.put("os", "linux");
    config.put(
        "config",
        Map.of("Env", List.of("PATH=/usr/bin:/bin", "GREETING=hi"), "Cmd", List.of("/app/a")));
    config.put("rootfs", Map.of("type", "layers", "diff_ids", diffIds));
    config.put("history", List.of(Map.of("created_by", "test")));
    Descriptor c = w.putBlob(Json.write(config), MediaTypes.OCI_CONFIG);
    Manifest m = new Manifest(2, MediaTypes.OCI_MANIFEST, null, c, descs, Map.of());
    Descriptor md = w.putBlob(Json.write(m), MediaTypes.OCI_MANIFEST);
    w.tag(md, tag);
    return md;
  }
}

package dev.lazypull.pack;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.MediaTypes;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code lazypull convert}: an ordinary OCI/Docker image (uncompressed, gzip or zstd tar layers)
 * into a lazypull image. Layers are applied in order with OCI whiteouts and opaque directories into
 * one merged tree (one bootstrap); each source layer's file data goes into a data blob of its own,
 * deduplicated within that layer only, so the blob depends on that layer alone and images sharing
 * base layers share data blobs.
 *
 * <p>The config is the source's (entrypoint, env, …) with {@code rootfs.diff_ids} describing the
 * new layers and {@code history} dropped (it described the old ones). Every source layer is
 * verified against its digest as it is read; nothing is published unless all of them verify.
 */
public final class Converter {
  private static final Set<String> LAYER_TYPES =
      Set.of(
          MediaTypes.OCI_LAYER_TAR,
          MediaTypes.OCI_LAYER_TAR_GZIP,
          MediaTypes.OCI_LAYER_TAR_ZSTD,
          MediaTypes.DOCKER_LAYER_TAR_GZIP,
          "application/vnd.docker.image.rootfs.diff.tar");

  private Converter() {}

  public static ImageBuilder.Built convert(
      SourceImage src, ImageOutput out, Packer.Options o, Progress progress) throws IOException {
    List<Descriptor> layers = src.manifest().layers();
    for (Descriptor l : layers) {
      if (!LAYER_TYPES.contains(l.mediaType())) {
        throw new InvalidImageException(
            src.reference()
                + ": layer "
                + l.digest()
                + " has media type "
                + l.mediaType()
                + " (convertible: tar, tar+gzip, tar+zstd layers)");
      }
    }
    byte[] sourceConfig = src.config();
    JsonNode config = Json.MAPPER.readTree(sourceConfig);
    if (!(config instanceof ObjectNode)) {
      throw new InvalidImageException(src.reference() + ": config is not a JSON object");
    }
    try (ChunkStore store =
        new ChunkStore(out, o.chunkSize(), 0, o.threads(), o.compression(), o.level(), progress)) {
      TarApplier applier = new TarApplier(store, progress);
      for (int i = 0; i < layers.size(); i++) {
        Descriptor l = layers.get(i);
        progress.stage(
            "layer "
                + (i + 1)
                + "/"
                + layers.size()
                + ": "
                + l.digest()
                + " ("
                + l.size()
                + " bytes)");
        store.startGroup();
        try (InputStream raw = src.openLayer(l)) {
          InputStream tar = Decompression.open(raw);
          applier.apply(tar, src.reference() + " layer " + (i + 1), i + 1, true);
          tar.transferTo(OutputStream.nullOutputStream());
          // past the tar's end (padding, compressor trailer): every source checks its layer when
          // read to the end
          raw.transferTo(OutputStream.nullOutputStream());
        }
      }
      List<ChunkStore.StoredBlob> blobs = store.finish();
      return ImageBuilder.finish(
          applier.root(),
          blobs,
          o.chunkSize(),
          o.mtime(),
          out,
          Map.of(LazyManifests.ANNOTATION_SOURCE, src.manifestDigest().toString()),
          newLayers -> rewriteConfig((ObjectNode) config.deepCopy(), newLayers),
          progress);
    }
  }

  private static byte[] rewriteConfig(ObjectNode config, List<String> diffIds) {
    ObjectNode rootfs = config.putObject("rootfs");
    rootfs.put("type", "layers");
    ArrayNode ids = rootfs.putArray("diff_ids");
    for (String d : diffIds) {
      ids.add(d); // the sha256 of each layer's uncompressed content
    }
    config.remove("history");
    return Json.write(config);
  }
}

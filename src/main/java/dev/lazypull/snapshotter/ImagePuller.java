package dev.lazypull.snapshotter;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.containerd.api.images.CreateImageRequest;
import dev.lazypull.containerd.api.images.Image;
import dev.lazypull.containerd.api.images.UpdateImageRequest;
import dev.lazypull.containerd.api.leases.CreateRequest;
import dev.lazypull.containerd.api.leases.DeleteRequest;
import dev.lazypull.containerd.api.snapshots.PrepareSnapshotRequest;
import dev.lazypull.containerd.api.snapshots.RemoveSnapshotRequest;
import dev.lazypull.containerd.api.snapshots.StatSnapshotRequest;
import dev.lazypull.containerd.api.types.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.Json;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.registry.RawManifest;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryImageSource;
import dev.lazypull.registry.Repository;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * {@code lazypull pull}: creates an image in containerd and prepares its snapshots the way
 * containerd's unpacker does for CRI — each layer's Prepare carries {@code
 * containerd.io/snapshot.ref} (its chain ID) and CRI's image, manifest and layer labels — so a
 * remote snapshotter answers "already exists" for every layer it serves lazily and nothing is
 * downloaded. Only the manifest and config go into containerd's content store.
 *
 * <p>An image the snapshotter does not serve lazily (not a lazypull image) is pulled the ordinary
 * way instead: its layers are copied into the content store, and {@code ctr run --snapshotter NAME}
 * unpacks them.
 */
public final class ImagePuller {
  private static final String GC_CONFIG = "containerd.io/gc.ref.content.config";
  private static final String GC_LAYER = "containerd.io/gc.ref.content.l.";
  private static final String GC_SNAPSHOT = "containerd.io/gc.ref.snapshot.";
  private static final String GC_EXPIRE = "containerd.io/gc.expire";

  /** What a pull did. */
  public record Result(
      String name,
      Digest manifest,
      boolean lazy,
      String topChainId,
      int layers,
      long bytesCopied) {}

  private final Containerd containerd;
  private final RegistryClient registry;
  private final String snapshotter;
  private final PrintStream progress;

  public ImagePuller(
      Containerd containerd, RegistryClient registry, String snapshotter, PrintStream progress) {
    this.containerd = containerd;
    this.registry = registry;
    this.snapshotter = snapshotter;
    this.progress = progress;
  }

  public Result pull(String reference) throws IOException {
    ImageReference parsed = ImageReference.parse(reference);
    if (!(parsed instanceof ImageReference.Registry ref)) {
      throw new IllegalArgumentException(
          reference + ": lazypull pull takes a registry reference " + "(HOST/REPO[:TAG|@DIGEST])");
    }
    // the lease (the first containerd call: connection and gRPC set up) while the registry resolves
    // the image
    String lease = "lazypull-pull-" + System.nanoTime();
    CompletableFuture<Void> leased =
        CompletableFuture.runAsync(
            () ->
                containerd
                    .leases()
                    .create(
                        CreateRequest.newBuilder()
                            .setId(lease)
                            .putLabels(
                                GC_EXPIRE,
                                Instant.now()
                                    .plus(1, ChronoUnit.HOURS)
                                    .truncatedTo(ChronoUnit.SECONDS)
                                    .toString())
                            .build()));
    RawManifest raw;
    Manifest manifest;
    Repository repo;
    byte[] config;
    try {
      RegistryImageSource source = new RegistryImageSource(registry, ref);
      raw = source.resolveManifest();
      manifest = Json.parse(raw.bytes(), Manifest.class, reference + " manifest " + raw.digest());
      repo = source.repository();
      config = read(repo, manifest.config());
    } finally {
      awaitLease(leased);
    }
    containerd.useLease(lease);
    try {
      return pull(reference, raw, manifest, repo, config);
    } finally {
      containerd.useLease(null);
      try {
        containerd.leases().delete(DeleteRequest.newBuilder().setId(lease).build());
      } catch (StatusRuntimeException e) {
        progress.println(
            "warning: lease "
                + lease
                + " was not deleted ("
                + e.getStatus()
                + "); it expires in an hour");
      }
    }
  }

  private static void awaitLease(CompletableFuture<Void> leased) throws IOException {
    try {
      leased.join();
    } catch (CompletionException e) {
      if (e.getCause() instanceof StatusRuntimeException s) {
        throw s;
      }
      throw new IOException("creating a lease in containerd: " + e.getCause(), e.getCause());
    }
  }

  private Result pull(
      String reference, RawManifest raw, Manifest manifest, Repository repo, byte[] config)
      throws IOException {
    JsonNode configJson = Json.MAPPER.readTree(config);
    List<String> diffIds = new ArrayList<>();
    configJson.path("rootfs").path("diff_ids").forEach(d -> diffIds.add(d.asText()));
    if (diffIds.size() != manifest.layers().size()) {
      throw new InvalidImageException(
          reference
              + ": the config lists "
              + diffIds.size()
              + " diff_ids for "
              + manifest.layers().size()
              + " layers");
    }
    List<String> chain = chainIds(diffIds);
    boolean lazy =
        !manifest.layers().isEmpty()
            && MediaTypes.EROFS_BOOTSTRAP.equals(manifest.layers().get(0).mediaType());
    String top = chain.isEmpty() ? null : chain.get(chain.size() - 1);

    long copied = 0;
    Map<String, String> configLabels = new HashMap<>();
    if (lazy && top != null) {
      configLabels.put(
          GC_SNAPSHOT + snapshotter, top); // the image keeps its snapshots from collection
    }
    containerd.writeContent(
        manifest.config().digest().toString(),
        config.length,
        Channels.newChannel(new ByteArrayInputStream(config)),
        configLabels);
    Map<String, String> manifestLabels = new HashMap<>();
    manifestLabels.put(GC_CONFIG, manifest.config().digest().toString());
    if (!lazy) {
      for (int i = 0; i < manifest.layers().size(); i++) {
        manifestLabels.put(GC_LAYER + i, manifest.layers().get(i).digest().toString());
      }
    }
    containerd.writeContent(
        raw.digest().toString(),
        raw.bytes().length,
        Channels.newChannel(new ByteArrayInputStream(raw.bytes())),
        manifestLabels);
    if (lazy) {
      prepareLazily(reference, raw.digest(), manifest, chain);
    } else {
      copied = copyLayers(repo, manifest);
    }
    createImage(reference, raw);
    return new Result(reference, raw.digest(), lazy, top, manifest.layers().size(), copied);
  }

  /**
   * containerd's chain IDs: the first diff_id, then sha256("PREVIOUS DIFFID") for each next layer.
   */
  public static List<String> chainIds(List<String> diffIds) {
    List<String> out = new ArrayList<>();
    String prev = null;
    for (String d : diffIds) {
      prev =
          prev == null
              ? d
              : Digest.of((prev + " " + d).getBytes(StandardCharsets.US_ASCII)).toString();
      out.add(prev);
    }
    return out;
  }

  private void prepareLazily(
      String reference, Digest manifestDigest, Manifest manifest, List<String> chain)
      throws IOException {
    String parent = "";
    for (int i = 0; i < chain.size(); i++) {
      String chainId = chain.get(i);
      String layer = manifest.layers().get(i).digest().toString();
      if (!exists(chainId)) {
        String key = "extract-" + System.nanoTime() + " " + chainId;
        PrepareSnapshotRequest req =
            PrepareSnapshotRequest.newBuilder()
                .setSnapshotter(snapshotter)
                .setKey(key)
                .setParent(parent)
                .putLabels(RemoteLayers.LABEL_TARGET, chainId)
                .putLabels(RemoteLayers.LABEL_IMAGE_REF, reference)
                .putLabels(RemoteLayers.LABEL_MANIFEST, manifestDigest.toString())
                .putLabels(RemoteLayers.LABEL_LAYER, layer)
                .build();
        try {
          containerd.snapshots().prepare(req);
          // an ordinary snapshot: this snapshotter does not serve the layer lazily
          containerd
              .snapshots()
              .remove(
                  RemoveSnapshotRequest.newBuilder()
                      .setSnapshotter(snapshotter)
                      .setKey(key)
                      .build());
          throw new IOException(
              "snapshotter "
                  + snapshotter
                  + " did not serve layer "
                  + (i + 1)
                  + " ("
                  + layer
                  + ") of "
                  + reference
                  + " lazily: is it lazypull's snapshotter?");
        } catch (StatusRuntimeException e) {
          if (e.getStatus().getCode() != Status.Code.ALREADY_EXISTS) {
            throw new IOException(
                "preparing layer "
                    + (i + 1)
                    + " of "
                    + reference
                    + " ("
                    + layer
                    + ") with "
                    + "snapshotter "
                    + snapshotter
                    + ": "
                    + describe(e),
                e);
          }
        }
        if (!exists(chainId)) {
          throw new IOException(
              "snapshotter "
                  + snapshotter
                  + " answered that layer "
                  + (i + 1)
                  + " of "
                  + reference
                  + " exists, but containerd has no snapshot "
                  + chainId);
        }
      }
      progress.println(
          "layer "
              + (i + 1)
              + "/"
              + chain.size()
              + " "
              + layer.substring(7, 19)
              + ": lazy ("
              + chainId.substring(7, 19)
              + ")");
      parent = chainId;
    }
  }

  private boolean exists(String chainId) {
    try {
      containerd
          .snapshots()
          .stat(
              StatSnapshotRequest.newBuilder().setSnapshotter(snapshotter).setKey(chainId).build());
      return true;
    } catch (StatusRuntimeException e) {
      if (e.getStatus().getCode() == Status.Code.NOT_FOUND) {
        return false;
      }
      throw e;
    }
  }

  private long copyLayers(Repository repo, Manifest manifest) throws IOException {
    progress.println(
        "not a lazypull image: copying its "
            + manifest.layers().size()
            + " layer(s) into containerd's content store (`ctr run --snapshotter "
            + snapshotter
            + "` unpacks them)");
    long total = 0;
    for (dev.lazypull.image.Descriptor l : manifest.layers()) {
      try (ReadableByteChannel ch = registry.openBlob(repo, l, 0, l.size())) {
        containerd.writeContent(l.digest().toString(), l.size(), ch, Map.of());
      }
      total += l.size();
    }
    return total;
  }

  private void createImage(String name, RawManifest raw) {
    Image image =
        Image.newBuilder()
            .setName(name)
            .setTarget(
                Descriptor.newBuilder()
                    .setMediaType(raw.mediaType())
                    .setDigest(raw.digest().toString())
                    .setSize(raw.bytes().length))
            .build();
    try {
      containerd.images().create(CreateImageRequest.newBuilder().setImage(image).build());
    } catch (StatusRuntimeException e) {
      if (e.getStatus().getCode() != Status.Code.ALREADY_EXISTS) {
        throw e;
      }
      containerd
          .images()
          .update(
              UpdateImageRequest.newBuilder()
                  .setImage(image)
                  .setUpdateMask(com.google.protobuf.FieldMask.newBuilder().addPaths("target"))
                  .build());
    }
  }

  private byte[] read(Repository repo, dev.lazypull.image.Descriptor d) throws IOException {
    if (d.size() > Json.MAX_DOCUMENT_BYTES) {
      throw new InvalidImageException("config " + d.digest() + " claims " + d.size() + " bytes");
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    registry.downloadBlob(repo, d, Channels.newChannel(out));
    return out.toByteArray();
  }

  static String describe(StatusRuntimeException e) {
    Status s = e.getStatus();
    return s.getCode() + (s.getDescription() == null ? "" : ": " + s.getDescription());
  }
}

package dev.lazypull.snapshotter;

import java.nio.file.Path;
import java.util.Map;

/**
 * Lazy layers: which prepared layers a snapshotter serves without unpacking (containerd's
 * remote-snapshot label protocol), and the EROFS mounts that serve them. {@link DaemonRemoteLayers}
 * is the real one (the registry says what an image is, the daemon prepares it); tests give others.
 */
public interface RemoteLayers {
  /**
   * The label containerd's unpacker sets on every layer's Prepare: the chain ID it will commit as.
   */
  String LABEL_TARGET = "containerd.io/snapshot.ref";

  /**
   * CRI's labels (passed on by containerd as snapshot labels): the image, its manifest, the layer.
   */
  String LABEL_IMAGE_REF = "containerd.io/snapshot/cri.image-ref";

  String LABEL_MANIFEST = "containerd.io/snapshot/cri.manifest-digest";
  String LABEL_LAYER = "containerd.io/snapshot/cri.layer-digest";

  /**
   * Set on the snapshots this snapshotter serves lazily: the image reference the daemon serves them
   * from.
   */
  String LABEL_LAZY_IMAGE = "containerd.io/snapshot/lazypull.image";

  /**
   * Set on lazy snapshots: {@code image} (the EROFS mount) or {@code placeholder} (held by that
   * mount).
   */
  String LABEL_LAZY_ROLE = "containerd.io/snapshot/lazypull.role";

  /**
   * What a Prepare carrying the remote-snapshot labels is: null when the layer is not served lazily
   * (not a lazypull image, or the labels do not name an image at all), so it is unpacked as usual;
   * else the lazy layer.
   *
   * @param parentImage the lazy image layer at the bottom of the parent chain, or null (none, or
   *     not lazy)
   * @param hasParent whether the Prepare names a parent
   * @throws SnapshotException INVALID_ARGUMENT for labels that contradict themselves or the image
   *     (a layer digest that is not in the manifest), UNAVAILABLE when the image is a lazypull
   *     image but the daemon cannot serve it
   */
  LazyLayer resolve(Map<String, String> labels, LazyLayer parentImage, boolean hasParent)
      throws SnapshotException;

  /**
   * Mounts an {@link LazyLayer#IMAGE} layer read-only at {@code target} (registering it with the
   * daemon, which prepares it). Returns the layer with what registration told (fsid, bootstrap
   * size).
   *
   * @throws SnapshotException UNAVAILABLE when the daemon cannot be reached or refuses; INTERNAL
   *     when mount fails
   */
  LazyLayer mount(LazyLayer layer, Path target) throws SnapshotException;

  /** Whether {@code target} is an EROFS mount now. */
  boolean isMounted(Path target);

  /**
   * Unmounts {@code target} (detaching it when busy) and tells the daemon; best effort, failures
   * are logged.
   */
  void unmount(LazyLayer layer, Path target);

  /**
   * What a mounted lazy image holds on this host now: bootstrap and cached data bytes, and its
   * inodes.
   */
  SnapshotUsage usage(LazyLayer layer, Path target) throws SnapshotException;
}

package dev.lazypull.snapshotter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Lazy layers without a daemon or a kernel mount: an image whose manifest digest is known is
 * "lazypull", its layer 0 the bootstrap; a "mount" writes a marker file into the target, which
 * counts as mounted until unmounted.
 */
final class FakeRemoteLayers implements RemoteLayers {
  /** manifest digest → its layer digests, bootstrap first. */
  final Map<String, List<String>> images = new ConcurrentHashMap<>();

  final Set<Path> mounted = ConcurrentHashMap.newKeySet();
  final List<String> log = Collections.synchronizedList(new ArrayList<>());
  volatile boolean daemonDown;

  @Override
  public LazyLayer resolve(Map<String, String> labels, LazyLayer parentImage, boolean hasParent)
      throws SnapshotException {
    String manifest = labels.get(LABEL_MANIFEST);
    String layer = labels.get(LABEL_LAYER);
    if (manifest == null || !images.containsKey(manifest)) {
      return null;
    }
    List<String> layers = images.get(manifest);
    String ref = labels.get(LABEL_IMAGE_REF) + "@" + manifest;
    if (layers.get(0).equals(layer)) {
      return new LazyLayer(LazyLayer.IMAGE, ref, null, 4096, layer);
    }
    if (!layers.contains(layer)) {
      throw SnapshotException.invalidArgument("layer " + layer + " is not a layer of " + ref);
    }
    if (parentImage == null || !parentImage.bootstrap().equals(layers.get(0))) {
      throw SnapshotException.invalidArgument(
          "layer " + layer + " must follow its bootstrap layer");
    }
    return new LazyLayer(LazyLayer.PLACEHOLDER, ref, parentImage.fsid(), 0, layers.get(0));
  }

  @Override
  public LazyLayer mount(LazyLayer layer, Path target) throws SnapshotException {
    if (daemonDown) {
      throw new SnapshotException(
          SnapshotException.Code.UNAVAILABLE, "the lazypull daemon is not running");
    }
    try {
      Files.writeString(target.resolve("lazy-image"), layer.image());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    mounted.add(target);
    log.add("mount " + target);
    return layer.withFsid("fsid-" + layer.bootstrap().substring(7, 15));
  }

  @Override
  public boolean isMounted(Path target) {
    return mounted.contains(target);
  }

  @Override
  public void unmount(LazyLayer layer, Path target) {
    if (mounted.remove(target)) {
      try {
        Files.deleteIfExists(target.resolve("lazy-image"));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      log.add("unmount " + target);
    }
  }

  @Override
  public SnapshotUsage usage(LazyLayer layer, Path target) {
    return new SnapshotUsage(layer.bootstrapBytes() + 1000, 3);
  }
}

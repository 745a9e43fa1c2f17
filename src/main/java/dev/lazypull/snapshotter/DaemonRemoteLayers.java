package dev.lazypull.snapshotter;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.control.ControlClient;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.registry.RawManifest;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.Repository;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.MountInfo;
import dev.lazypull.sys.Mounts;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Logger;
import java.util.stream.Stream;

/**
 * Lazy layers served by the lazypull daemon. The registry says what an image is (its manifest,
 * fetched by the digest CRI's labels name, cached); a lazypull image's bootstrap layer is
 * registered with the daemon through its control socket ({@code register}: the daemon prepares the
 * image and answers how to mount it) and mounted here read-only, once per image; its other layers
 * are placeholders. Any other image is not served lazily, so containerd unpacks it as usual.
 */
public final class DaemonRemoteLayers implements RemoteLayers, AutoCloseable {
  private static final Logger LOG = Logger.getLogger(DaemonRemoteLayers.class.getName());
  private static final int MAX_CACHED_MANIFESTS = 256;

  private final RegistryClient registry;
  private final Path socket;
  private final ControlClient daemon;
  private final Duration daemonTimeout;
  private final ExecutorService calls =
      Executors.newCachedThreadPool(
          r -> {
            Thread t = new Thread(r, "lazypull-snapshotter-daemon");
            t.setDaemon(true);
            return t;
          });
  private final Map<Digest, Manifest> manifests =
      Collections.synchronizedMap(
          new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<Digest, Manifest> e) {
              return size() > MAX_CACHED_MANIFESTS;
            }
          });
  private final Map<String, Long> inodes = new ConcurrentHashMap<>();

  /**
   * @param registry where manifests are read (the registry settings the daemon has, so both see one
   *     image)
   * @param socket the daemon's control socket
   * @param daemonTimeout how long a daemon call may take (registering fetches the bootstrap whole)
   */
  public DaemonRemoteLayers(RegistryClient registry, Path socket, Duration daemonTimeout) {
    this.registry = registry;
    this.socket = socket;
    this.daemon = new ControlClient(socket);
    this.daemonTimeout = daemonTimeout;
  }

  @Override
  public LazyLayer resolve(Map<String, String> labels, LazyLayer parentImage, boolean hasParent)
      throws SnapshotException {
    String ref = labels.get(LABEL_IMAGE_REF);
    String manifestText = labels.get(LABEL_MANIFEST);
    String layerText = labels.get(LABEL_LAYER);
    if (ref == null && manifestText == null && layerText == null) {
      return null; // containerd's own unpacking (ctr pull): nothing says which image this is
    }
    if (ref == null || manifestText == null || layerText == null) {
      throw SnapshotException.invalidArgument(
          "labels "
              + LABEL_IMAGE_REF
              + ", "
              + LABEL_MANIFEST
              + " and "
              + LABEL_LAYER
              + " go together; missing "
              + (ref == null
                  ? LABEL_IMAGE_REF
                  : manifestText == null ? LABEL_MANIFEST : LABEL_LAYER));
    }
    Digest manifestDigest = digest(LABEL_MANIFEST, manifestText);
    Digest layer = digest(LABEL_LAYER, layerText);
    ImageReference.Registry image;
    try {
      ImageReference r = ImageReference.parse(ref);
      if (!(r instanceof ImageReference.Registry reg)) {
        throw SnapshotException.invalidArgument(
            "label " + LABEL_IMAGE_REF + " '" + ref + "' is not a registry reference");
      }
      image = reg;
    } catch (IllegalArgumentException e) {
      throw SnapshotException.invalidArgument(
          "label " + LABEL_IMAGE_REF + " '" + ref + "': " + e.getMessage());
    }
    String pinned = image.registry() + "/" + image.repository() + "@" + manifestDigest;
    Manifest m = manifest(image, manifestDigest);
    if (m == null
        || m.layers().isEmpty()
        || !MediaTypes.EROFS_BOOTSTRAP.equals(m.layers().get(0).mediaType())) {
      return null; // not a lazypull image (or not readable here): containerd unpacks it
    }
    LazyImage lazy;
    try {
      lazy = LazyImage.of(pinned, manifestDigest, m);
    } catch (InvalidImageException e) {
      throw SnapshotException.failedPrecondition(
          pinned + " is not a valid lazypull image: " + e.getMessage());
    }
    String bootstrap = lazy.bootstrap().digest().toString();
    if (lazy.bootstrap().digest().equals(layer)) {
      if (hasParent) {
        throw SnapshotException.invalidArgument(
            "layer "
                + layer
                + " is the bootstrap of lazypull image "
                + pinned
                + " (its first layer) but was prepared on a parent");
      }
      return new LazyLayer(LazyLayer.IMAGE, pinned, null, lazy.bootstrap().size(), bootstrap);
    }
    boolean inImage = m.layers().stream().anyMatch(d -> d.digest().equals(layer));
    if (!inImage) {
      throw SnapshotException.invalidArgument(
          "layer " + layer + " is not a layer of lazypull image " + pinned);
    }
    if (parentImage == null || !bootstrap.equals(parentImage.bootstrap())) {
      throw SnapshotException.invalidArgument(
          "layer "
              + layer
              + " of lazypull image "
              + pinned
              + " must be prepared on the chain of its bootstrap layer "
              + bootstrap
              + ", and its parent is not");
    }
    return new LazyLayer(LazyLayer.PLACEHOLDER, pinned, parentImage.fsid(), 0, bootstrap);
  }

  private static Digest digest(String label, String text) throws SnapshotException {
    try {
      return Digest.parse(text);
    } catch (IllegalArgumentException e) {
      throw SnapshotException.invalidArgument(
          "label " + label + " '" + text + "' is not a sha256 digest");
    }
  }

  /** The manifest by digest (verified), or null when it cannot be read or is an index. */
  private Manifest manifest(ImageReference.Registry image, Digest digest) {
    Manifest cached = manifests.get(digest);
    if (cached != null) {
      return cached;
    }
    try {
      RawManifest raw = registry.fetchManifest(Repository.of(image), digest.toString(), digest);
      if (!MediaTypes.isManifest(raw.mediaType())) {
        return null;
      }
      Manifest m = Json.parse(raw.bytes(), Manifest.class, "manifest " + digest);
      manifests.put(digest, m);
      return m;
    } catch (IOException | RuntimeException e) {
      LOG.warning(
          "cannot read manifest "
              + digest
              + " of "
              + image.canonical()
              + " ("
              + e.getMessage()
              + "): not served lazily, containerd unpacks it");
      return null;
    }
  }

  @Override
  public LazyLayer mount(LazyLayer layer, Path target) throws SnapshotException {
    JsonNode reply;
    try {
      reply = register(layer.image(), layer.fsid());
    } catch (SnapshotException e) {
      if (layer.fsid() != null || !e.getMessage().contains("is already registered for")) {
        throw e;
      }
      // the same image registered under another reference (another registry host, a mirror): an
      // fsid of this
      // reference's own; cache files are per blob digest, so both still share them
      reply = register(layer.image(), fsidFor(layer.image()));
    }
    JsonNode m = reply.path("mount");
    String source = m.path("source").asText();
    String options = m.path("options").asText();
    String fsid = reply.path("image").path("fsid").asText(null);
    try {
      Mounts.mount(source, target.toString(), "erofs", Mounts.MS_RDONLY, options);
    } catch (ErrnoException | IllegalArgumentException e) {
      tellUnmounted();
      throw new SnapshotException(
          SnapshotException.Code.INTERNAL,
          "mount -t erofs "
              + source
              + " "
              + target
              + " -o "
              + options
              + " failed: "
              + e.getMessage(),
          e);
    }
    LOG.info(
        "mounted "
            + layer.image()
            + " (fsid "
            + fsid
            + ", "
            + m.path("frontend").asText()
            + ") at "
            + target);
    return layer.withFsid(fsid);
  }

  private JsonNode register(String image, String fsid) throws SnapshotException {
    ObjectNode req = ControlClient.request("register").put("image", image);
    if (fsid != null) {
      req.put("fsid", fsid);
    }
    return call(req, "register " + image);
  }

  /** An fsid for one reference: {@code lpr-} and 32 hex digits of its sha256. */
  static String fsidFor(String reference) {
    return "lpr-" + Digest.of(reference.getBytes(StandardCharsets.UTF_8)).hex().substring(0, 32);
  }

  @Override
  public boolean isMounted(Path target) {
    String t = target.toAbsolutePath().toString();
    try {
      return MountInfo.read().stream()
          .anyMatch(mt -> mt.mountPoint().equals(t) && mt.fsType().equals("erofs"));
    } catch (IOException e) {
      LOG.warning("reading /proc/self/mountinfo: " + e.getMessage());
      return false;
    }
  }

  @Override
  public void unmount(LazyLayer layer, Path target) {
    String t = target.toAbsolutePath().toString();
    for (int i = 0;
        i < 8 && isMounted(target);
        i++) { // mounted more than once over itself: each goes
      try {
        Mounts.umount(t, 0);
      } catch (ErrnoException e) {
        try {
          Mounts.umount(t, Mounts.MNT_DETACH);
          LOG.warning("detached " + t + " (busy: " + e.getMessage() + ")");
        } catch (ErrnoException again) {
          if (again.errno() != Errno.EINVAL) {
            LOG.warning("cannot unmount " + t + ": " + again.getMessage());
          }
          break;
        }
      }
    }
    if (layer != null) {
      inodes.remove(t);
    }
    tellUnmounted();
  }

  /**
   * Lets the daemon release the images no mount uses any more (best effort: it does so by itself
   * later too).
   */
  private void tellUnmounted() {
    try {
      call(ControlClient.request("unmounted"), "unmounted");
    } catch (SnapshotException e) {
      LOG.fine(() -> "telling the daemon about an unmount: " + e.getMessage());
    }
  }

  @Override
  public SnapshotUsage usage(LazyLayer layer, Path target) throws SnapshotException {
    JsonNode status = call(ControlClient.request("status"), "status");
    long bytes = layer.bootstrapBytes();
    for (JsonNode o : status.path("objects")) {
      if (o.path("fsid").asText().equals(layer.fsid())) {
        bytes += o.path("readyBytes").asLong();
      }
    }
    String t = target.toAbsolutePath().toString();
    Long n = inodes.get(t);
    if (n == null) {
      try (Stream<Path> s = Files.walk(target)) { // metadata only: it is all in the bootstrap
        n = s.count();
      } catch (IOException | UncheckedIOException e) {
        throw new SnapshotException(
            SnapshotException.Code.INTERNAL,
            "counting the inodes of " + target + ": " + e.getMessage(),
            e);
      }
      inodes.put(t, n);
    }
    return new SnapshotUsage(bytes, n);
  }

  /**
   * One control request, bounded in time; an unreachable or silent daemon is UNAVAILABLE, a refusal
   * too.
   */
  private JsonNode call(ObjectNode request, String what) throws SnapshotException {
    Future<JsonNode> f = calls.submit(() -> daemon.call(request));
    try {
      return f.get(daemonTimeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      f.cancel(true);
      throw new SnapshotException(
          SnapshotException.Code.UNAVAILABLE,
          "the lazypull daemon at "
              + socket
              + " did not answer "
              + what
              + " within "
              + daemonTimeout.toSeconds()
              + " s");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new SnapshotException(
          SnapshotException.Code.UNAVAILABLE, "interrupted waiting for the daemon");
    } catch (ExecutionException e) {
      Throwable c = e.getCause() != null ? e.getCause() : e;
      throw new SnapshotException(
          SnapshotException.Code.UNAVAILABLE,
          "lazypull daemon (" + socket + "), " + what + ": " + c.getMessage(),
          c);
    }
  }

  @Override
  public void close() {
    calls.shutdownNow();
  }
}

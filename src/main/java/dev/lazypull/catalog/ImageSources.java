package dev.lazypull.catalog;

import dev.lazypull.blob.ImageSource;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.PullOptions;
import dev.lazypull.index.IndexedImages;
import dev.lazypull.oci.OciLayout;
import java.io.IOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * Opens image references, one {@link ImageSource} per reference for the life of the daemon (so
 * connection pools and token caches are shared by every blob of an image). A registry reference is
 * opened with the {@link PullOptions} last given for it ({@link #open(String, PullOptions)}, {@link
 * #remember}), so an image registered with {@code --plain-http} is read that way by every part of
 * the daemon, also after a restart.
 */
public final class ImageSources {
  /** Opens registry references; absent until a registry client is configured. */
  public interface RegistryOpener {
    ImageSource open(ImageReference.Registry reference) throws IOException;

    /**
     * Opens {@code reference} with per-image registry settings. The default ignores them: openers
     * that are not backed by a registry client (tests, in-memory images) have nothing to apply them
     * to.
     */
    default ImageSource open(ImageReference.Registry reference, PullOptions options)
        throws IOException {
      return open(reference);
    }
  }

  private record Opened(ImageSource source, PullOptions options) {}

  private final RegistryOpener registry;
  private final IndexedImages indexes;
  private final Map<String, Opened> open = new ConcurrentHashMap<>();

  /** Per-image registry settings by canonical reference. */
  private final Map<String, PullOptions> options = new ConcurrentHashMap<>();

  public ImageSources(RegistryOpener registry) {
    this(registry, null);
  }

  /**
   * @param indexes serves ordinary images through their side-car indexes (every source opened is
   *     wrapped), or null for lazypull images only
   */
  public ImageSources(RegistryOpener registry, IndexedImages indexes) {
    this.registry = registry;
    this.indexes = indexes;
  }

  /** The side-car index service the sources use, or null. */
  public IndexedImages indexes() {
    return indexes;
  }

  /** Local OCI layouts only. */
  public static ImageSources localOnly() {
    return new ImageSources(
        ref -> {
          throw new IOException(ref.canonical() + ": registry references need a registry client");
        });
  }

  /** Opens {@code reference} with the settings remembered for it, if any. */
  public ImageSource open(String reference) throws IOException {
    return open(reference, null);
  }

  /**
   * Opens {@code reference}; with {@code with} not null, with its platform and its plain HTTP (or
   * the plain HTTP remembered for the reference), remembered from now on: a source opened with
   * other settings is replaced.
   */
  public ImageSource open(String reference, PullOptions with) throws IOException {
    ImageReference ref = parse(reference);
    String key = ref.canonical();
    PullOptions remembered = options.getOrDefault(key, PullOptions.DEFAULT);
    // plain HTTP, once asked for, stays (it says how the host is reached); the platform is this
    // call's choice
    PullOptions want =
        with == null
            ? remembered
            : new PullOptions(remembered.plainHttp() || with.plainHttp(), with.platform());
    Opened existing = open.get(key);
    if (existing != null && existing.options().equals(want)) {
      return existing.source();
    }
    Opened created = new Opened(create(ref, want), want);
    if (with != null) {
      if (want.isDefault()) {
        options.remove(key);
      } else {
        options.put(key, want);
      }
    }
    Opened now =
        open.compute(key, (k, old) -> old != null && old.options().equals(want) ? old : created);
    return now.source();
  }

  /**
   * How {@code reference} is to be opened from now on (the daemon tells it every registered image's
   * settings).
   */
  public void remember(String reference, PullOptions with) throws IOException {
    if (with == null || with.isDefault()) {
      return;
    }
    options.merge(parse(reference).canonical(), with, PullOptions::merge);
  }

  /** The settings {@code reference} is opened with. */
  public PullOptions optionsOf(String reference) throws IOException {
    return options.getOrDefault(parse(reference).canonical(), PullOptions.DEFAULT);
  }

  private static ImageReference parse(String reference) throws IOException {
    try {
      return ImageReference.parse(reference);
    } catch (IllegalArgumentException e) {
      throw new IOException("bad image reference '" + reference + "': " + e.getMessage(), e);
    }
  }

  private ImageSource create(ImageReference ref, PullOptions with) throws IOException {
    ImageSource base;
    if (ref instanceof ImageReference.OciLayout oci) {
      base = new OciLayout(oci.dir(), oci.tag());
    } else {
      ImageReference.Registry r = (ImageReference.Registry) ref;
      base = with.isDefault() ? registry.open(r) : registry.open(r, with);
    }
    return indexes == null ? base : indexes.wrap(base, ref.canonical());
  }

  /** Drops a cached source (after unregistering an image, or when its config changed). */
  public void forget(String reference, Function<String, String> canonicalizer) {
    open.remove(canonicalizer.apply(reference));
  }
}

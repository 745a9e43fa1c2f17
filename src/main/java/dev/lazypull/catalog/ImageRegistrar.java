package dev.lazypull.catalog;

import dev.lazypull.blob.ImageSource;
import dev.lazypull.erofs.BootstrapHeader;
import dev.lazypull.erofs.DeviceSlot;
import dev.lazypull.erofs.ErofsFormatException;
import dev.lazypull.erofs.Superblock;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.PullOptions;
import dev.lazypull.index.IndexedImages;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * Turns an image reference into a catalog entry: resolves the manifest, reads the bootstrap's
 * superblock and device table, and decides how the kernel will name each blob.
 */
public final class ImageRegistrar {
  private static final Logger LOG = Logger.getLogger(ImageRegistrar.class.getName());

  /** fscache mode requires EROFS block size == PAGE_SIZE. */
  private static final int REQUIRED_BLOCK_SIZE = 4096;

  private final Catalog catalog;
  private final ImageSources sources;
  private final Consumer<ImageRecord> onRegistered;

  public ImageRegistrar(Catalog catalog, ImageSources sources) {
    this(catalog, sources, r -> {});
  }

  /**
   * @param onRegistered told of every successful registration (must not block: it runs on the
   *     caller's thread)
   */
  public ImageRegistrar(Catalog catalog, ImageSources sources, Consumer<ImageRecord> onRegistered) {
    this.catalog = catalog;
    this.sources = sources;
    this.onRegistered = onRegistered;
    // Before anything reads a registered image: open each one the way it was registered (e.g.
    // --plain-http).
    for (ImageRecord r : catalog.list()) {
      try {
        sources.remember(r.reference(), r.pull());
      } catch (IOException e) {
        LOG.warning("fsid " + r.fsid() + ": " + e.getMessage());
      }
    }
  }

  public ImageSources sources() {
    return sources;
  }

  /**
   * Registers {@code reference} under {@code fsid} (default: derived from the manifest digest) and
   * optional {@code domainId}. Idempotent for the same image and names.
   */
  public ImageRecord register(String reference, String fsid, String domainId, boolean replace)
      throws IOException {
    return register(reference, fsid, domainId, replace, null);
  }

  /**
   * {@link #register(String, String, String, boolean)} with per-image registry settings ({@code
   * --plain-http}, {@code --platform}; null: those already remembered for the reference, else the
   * daemon's): used to resolve the image, kept in its record, and used for every later read of it
   * (also after a restart).
   */
  public ImageRecord register(
      String reference, String fsid, String domainId, boolean replace, PullOptions pull)
      throws IOException {
    return register(reference, fsid, domainId, replace, pull, false);
  }

  /**
   * {@link #register(String, String, String, boolean, PullOptions)}; an ordinary image without a
   * side-car index gets one built on this host (into the local index store) when {@code
   * indexLocally}, else is an error saying how to make one.
   */
  public ImageRecord register(
      String reference,
      String fsid,
      String domainId,
      boolean replace,
      PullOptions pull,
      boolean indexLocally)
      throws IOException {
    ImageSource source = sources.open(reference, pull);
    LazyImage image =
        source instanceof IndexedImages.Source indexed
            ? indexed.resolve(indexLocally, null)
            : source.resolve();
    String id = fsid != null ? fsid : ImageRecord.defaultFsid(image.manifestDigest());
    PullOptions used = reference.startsWith("oci:") ? null : sources.optionsOf(reference);
    Optional<ImageRecord> known =
        catalog
            .get(id)
            .filter(
                r ->
                    r.manifestDigest().equals(image.manifestDigest())
                        && r.reference().equals(image.reference())
                        && Objects.equals(r.domainId(), domainId)
                        && r.pullOptions().equals(used != null ? used : PullOptions.DEFAULT));
    // the same image under the same names and settings again (a remount): its record holds what the
    // header would say, and reading the header again would cost a registry request per mount (a
    // record keeps default settings as null: compare with pullOptions())
    ImageRecord record =
        known.isPresent()
            ? known.get()
            : catalog.register(
                describe(image, readHeader(source, image), fsid, domainId).withPull(used), replace);
    onRegistered.accept(record);
    return record;
  }

  /**
   * Adds plain HTTP to a registered image's registry settings: kept in its record and used for its
   * reads from now on.
   */
  public ImageRecord addPlainHttp(ImageRecord r) throws IOException {
    PullOptions p = new PullOptions(true, r.pullOptions().platform());
    sources.open(r.reference(), p);
    return catalog.register(r.withPull(r.pullOptions().merge(p)), false);
  }

  /** Reads the bootstrap's leading bytes: one block, or up to the end of the device table. */
  public static BootstrapHeader readHeader(ImageSource source, LazyImage image) throws IOException {
    Descriptor boot = image.bootstrap();
    int first = (int) Math.min(REQUIRED_BLOCK_SIZE, boot.size());
    byte[] head = source.readRange(boot, 0, first);
    Superblock sb;
    try {
      sb = Superblock.decode(ByteBuffer.wrap(head));
      long needed = BootstrapHeader.bytesNeeded(sb);
      if (needed > boot.size()) {
        throw new ErofsFormatException(
            "device table ends at " + needed + ", past the bootstrap's " + boot.size() + " bytes");
      }
      if (needed > head.length) {
        head = source.readRange(boot, 0, (int) needed);
      }
      return BootstrapHeader.decode(ByteBuffer.wrap(head));
    } catch (ErofsFormatException e) {
      throw new InvalidImageException(
          image.reference() + ": bootstrap " + boot.digest() + ": " + e.getMessage());
    }
  }

  /** Builds the catalog record for an image whose bootstrap header is known. */
  public static ImageRecord describe(
      LazyImage image, BootstrapHeader header, String fsid, String domainId)
      throws InvalidImageException {
    if (header.superblock().blockSize() != REQUIRED_BLOCK_SIZE) {
      throw new InvalidImageException(
          image.reference()
              + ": EROFS block size "
              + header.superblock().blockSize()
              + " (fscache mode needs "
              + REQUIRED_BLOCK_SIZE
              + ")");
    }
    List<DeviceSlot> slots = header.devices();
    List<Descriptor> blobs = image.blobs();
    if (slots.size() != blobs.size()) {
      throw new InvalidImageException(
          image.reference()
              + ": bootstrap has "
              + slots.size()
              + " device slots but the manifest lists "
              + blobs.size()
              + " data blobs");
    }
    boolean allTagsMatch = true;
    List<String> names = new ArrayList<>();
    for (int i = 0; i < blobs.size(); i++) {
      String hex = blobs.get(i).digest().hex();
      names.add(hex);
      DeviceSlot slot = slots.get(i);
      if (!slot.tag().equals(hex)) {
        allTagsMatch = false;
        if (slot.isTagged()) {
          LOG.warning(
              image.reference()
                  + ": device "
                  + (i + 1)
                  + " is tagged '"
                  + slot.tag()
                  + "', not its blob digest; mounting with device= names instead");
        }
      }
    }
    // Tagged slots name their cookies themselves; untagged (or foreign) ones need device=<name> at
    // mount.
    boolean deviceOptions = !blobs.isEmpty() && !allTagsMatch;
    String id = fsid != null ? fsid : ImageRecord.defaultFsid(image.manifestDigest());
    try {
      return new ImageRecord(
          id,
          domainId,
          image.reference(),
          image.manifestDigest(),
          image.bootstrap(),
          blobs,
          names,
          deviceOptions,
          image.chunkTables());
    } catch (IllegalArgumentException e) {
      throw new InvalidImageException(e.getMessage());
    }
  }
}

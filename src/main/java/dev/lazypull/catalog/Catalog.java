package dev.lazypull.catalog;

import com.fasterxml.jackson.annotation.JsonProperty;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Json;
import dev.lazypull.sys.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The image catalog: fsid (+ optional domain) → bootstrap blob, and device cookie → data blob.
 * Persisted as {@code catalog.json} in the state dir (written atomically) so the kernel's OPENs can
 * be answered after a daemon restart. Thread-safe.
 */
public final class Catalog {
  public static final String FILE_NAME = "catalog.json";
  private static final String VOLUME_PREFIX = "erofs,";

  private final Path file;
  private final Map<String, ImageRecord> byFsid = new LinkedHashMap<>();

  private Catalog(Path file) {
    this.file = file;
  }

  /** An empty catalog that is never written (tests, one-shot tools). */
  public static Catalog inMemory() {
    return new Catalog(null);
  }

  /**
   * Loads the catalog of {@code stateDir}, or starts an empty one. A file that cannot be parsed is
   * an error, never silently replaced: it may hold registrations the mounts depend on.
   */
  public static Catalog load(Path stateDir) throws CatalogException {
    Catalog c = new Catalog(stateDir.resolve(FILE_NAME));
    if (Files.exists(c.file)) {
      try {
        State state = Json.parse(Files.readAllBytes(c.file), State.class, c.file.toString());
        if (state.version() != 1) {
          throw new CatalogException(c.file + ": unsupported catalog version " + state.version());
        }
        for (ImageRecord r : state.images() == null ? List.<ImageRecord>of() : state.images()) {
          c.byFsid.put(r.fsid(), r);
        }
      } catch (CatalogException e) {
        throw e;
      } catch (IOException | RuntimeException e) {
        throw new CatalogException(
            "cannot read the image catalog "
                + c.file
                + ": "
                + e.getMessage()
                + " (fix or move the file; it is not overwritten)",
            e);
      }
    }
    return c;
  }

  /**
   * Registers an image. Re-registering the same fsid for the same manifest is a no-op, except that
   * registry settings it asks for ({@link ImageRecord#pull}) are added to the record's; an fsid
   * already bound to another image is refused unless {@code replace}. An fsid must also not collide
   * with a data-blob cookie of its volume.
   */
  public synchronized ImageRecord register(ImageRecord record, boolean replace) throws IOException {
    ImageRecord existing = byFsid.get(record.fsid());
    if (existing != null && !replace) {
      if (existing.equals(record)) {
        return existing;
      }
      if (existing.withPull(null).equals(record.withPull(null))) {
        // the same image again: its registry settings gain what this registration asks for, never
        // lose any
        ImageRecord merged = existing.withPull(existing.pullOptions().merge(record.pull()));
        if (merged.equals(existing)) {
          return existing;
        }
        record = merged;
      } else {
        throw new CatalogException(
            "fsid "
                + record.fsid()
                + " is already registered for "
                + existing.reference()
                + " ("
                + existing.manifestDigest()
                + "); unregister it first or choose another --fsid");
      }
    }
    for (ImageRecord other : byFsid.values()) {
      if (!other.fsid().equals(record.fsid())
          && other.volumeName().equals(record.volumeName())
          && (other.deviceNames().contains(record.fsid())
              || record.deviceNames().contains(other.fsid()))) {
        throw new CatalogException(
            "fsid "
                + record.fsid()
                + " collides with a blob cookie in volume "
                + record.volumeName());
      }
    }
    Map<String, ImageRecord> next = new LinkedHashMap<>(byFsid);
    next.put(record.fsid(), record);
    persist(next);
    byFsid.clear();
    byFsid.putAll(next);
    return record;
  }

  public synchronized Optional<ImageRecord> unregister(String fsid) throws IOException {
    if (!byFsid.containsKey(fsid)) {
      return Optional.empty();
    }
    Map<String, ImageRecord> next = new LinkedHashMap<>(byFsid);
    ImageRecord removed = next.remove(fsid);
    persist(next);
    byFsid.remove(fsid);
    return Optional.of(removed);
  }

  public synchronized Optional<ImageRecord> get(String fsid) {
    return Optional.ofNullable(byFsid.get(fsid));
  }

  public synchronized List<ImageRecord> list() {
    List<ImageRecord> all = new ArrayList<>(byFsid.values());
    all.sort(Comparator.comparing(ImageRecord::fsid));
    return all;
  }

  /**
   * Resolves an OPEN: the volume key is {@code erofs,<domain_id or fsid>}; the cookie is the fsid
   * (bootstrap) or a device name (data blob) of an image in that volume.
   */
  public synchronized Optional<BlobBinding> lookup(String volumeKey, String cookieKey) {
    if (!volumeKey.startsWith(VOLUME_PREFIX)) {
      return Optional.empty();
    }
    String volume = volumeKey.substring(VOLUME_PREFIX.length());
    ImageRecord image = byFsid.get(cookieKey);
    if (image != null && image.volumeName().equals(volume)) {
      return Optional.of(new BlobBinding(image, image.bootstrap(), 0));
    }
    for (ImageRecord r : byFsid.values()) {
      if (!r.volumeName().equals(volume)) {
        continue;
      }
      int i = r.deviceNames().indexOf(cookieKey);
      if (i >= 0) {
        Descriptor blob = r.blobs().get(i);
        return Optional.of(new BlobBinding(r, blob, i + 1));
      }
    }
    return Optional.empty();
  }

  private void persist(Map<String, ImageRecord> images) throws IOException {
    if (file == null) {
      return;
    }
    AtomicFiles.write(
        file,
        Json.MAPPER
            .writerWithDefaultPrettyPrinter()
            .writeValueAsBytes(new State(1, new ArrayList<>(images.values()))));
  }

  record State(
      @JsonProperty("version") int version, @JsonProperty("images") List<ImageRecord> images) {}
}

package dev.lazypull.catalog;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.PullOptions;
import java.util.List;
import java.util.regex.Pattern;

/**
 * One registered image, as the catalog persists it: how the kernel will name it (fsid, domain,
 * device cookies) and which blobs back those names.
 *
 * @param fsid the mount's {@code fsid=}; also the bootstrap's cookie key
 * @param domainId the mount's {@code domain_id=}, or null; images in one domain share blob cache
 *     files
 * @param reference the image reference as registered (to re-open its source after a restart)
 * @param bootstrap layer 0
 * @param blobs layers 1..n; blob k-1 is EROFS device id k
 * @param deviceNames the cookie key of each data blob: its device tag, or the {@code device=} name
 *     we mount with
 * @param deviceOptions whether mounts must pass {@code device=<name>} options (untagged device
 *     slots)
 * @param chunkTables the chunk digest table of each data blob (same order), or empty when the image
 *     has none
 * @param pull registry settings the image was registered with ({@code --plain-http}, {@code
 *     --platform}), or null for none (then absent from catalog.json, as in catalogs written before
 *     the field existed)
 */
@JsonInclude(JsonInclude.Include.NON_EMPTY)
public record ImageRecord(
    @JsonProperty("fsid") String fsid,
    @JsonProperty("domainId") String domainId,
    @JsonProperty("reference") String reference,
    @JsonProperty("manifestDigest") Digest manifestDigest,
    @JsonProperty("bootstrap") Descriptor bootstrap,
    @JsonProperty("blobs") List<Descriptor> blobs,
    @JsonProperty("deviceNames") List<String> deviceNames,
    @JsonProperty("deviceOptions") boolean deviceOptions,
    @JsonProperty("chunkTables") List<Descriptor> chunkTables,
    @JsonProperty("pull") PullOptions pull) {

  /** fsid and domain_id become mount options and cache file names: keep them to a safe alphabet. */
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");

  public ImageRecord {
    checkName("fsid", fsid);
    if (domainId != null) {
      checkName("domain_id", domainId);
    }
    blobs =
        blobs == null ? List.of() : List.copyOf(blobs); // empty lists are left out of catalog.json
    deviceNames = deviceNames == null ? List.of() : List.copyOf(deviceNames);
    chunkTables = chunkTables == null ? List.of() : List.copyOf(chunkTables);
    if (pull != null && pull.isDefault()) {
      pull = null;
    }
    if (!chunkTables.isEmpty() && chunkTables.size() != blobs.size()) {
      throw new IllegalArgumentException(
          "fsid "
              + fsid
              + ": "
              + chunkTables.size()
              + " chunk tables for "
              + blobs.size()
              + " blobs");
    }
    if (blobs.size() != deviceNames.size()) {
      throw new IllegalArgumentException(
          "fsid "
              + fsid
              + ": "
              + blobs.size()
              + " blobs but "
              + deviceNames.size()
              + " device names");
    }
  }

  /** An image registered without registry settings of its own. */
  public ImageRecord(
      String fsid,
      String domainId,
      String reference,
      Digest manifestDigest,
      Descriptor bootstrap,
      List<Descriptor> blobs,
      List<String> deviceNames,
      boolean deviceOptions,
      List<Descriptor> chunkTables) {
    this(
        fsid,
        domainId,
        reference,
        manifestDigest,
        bootstrap,
        blobs,
        deviceNames,
        deviceOptions,
        chunkTables,
        null);
  }

  /** An image without chunk digest tables. */
  public ImageRecord(
      String fsid,
      String domainId,
      String reference,
      Digest manifestDigest,
      Descriptor bootstrap,
      List<Descriptor> blobs,
      List<String> deviceNames,
      boolean deviceOptions) {
    this(
        fsid,
        domainId,
        reference,
        manifestDigest,
        bootstrap,
        blobs,
        deviceNames,
        deviceOptions,
        List.of());
  }

  /**
   * The registry settings this image is pulled with ({@link PullOptions#DEFAULT} when it has none).
   */
  @JsonIgnore
  public PullOptions pullOptions() {
    return pull != null ? pull : PullOptions.DEFAULT;
  }

  /** This record with other registry settings. */
  public ImageRecord withPull(PullOptions p) {
    return new ImageRecord(
        fsid,
        domainId,
        reference,
        manifestDigest,
        bootstrap,
        blobs,
        deviceNames,
        deviceOptions,
        chunkTables,
        p);
  }

  /** The digest table of data blob {@code deviceId} (1-based), or null. */
  public Descriptor chunkTable(int deviceId) {
    return chunkTables.isEmpty() || deviceId < 1 ? null : chunkTables.get(deviceId - 1);
  }

  public static void checkName(String what, String name) {
    if (name == null || !NAME.matcher(name).matches()) {
      throw new IllegalArgumentException(
          what + " must match " + NAME.pattern() + ": '" + name + "'");
    }
  }

  /**
   * The fscache volume this image's cookies live in: {@code erofs,<domain_id or fsid>} without the
   * prefix.
   */
  @JsonIgnore
  public String volumeName() {
    return domainId != null ? domainId : fsid;
  }

  /** The option string for {@code mount -t erofs none MNT -o …}. */
  @JsonIgnore
  public String mountOptions() {
    StringBuilder b = new StringBuilder("fsid=").append(fsid);
    if (domainId != null) {
      b.append(",domain_id=").append(domainId);
    }
    if (deviceOptions) {
      for (String name : deviceNames) {
        b.append(",device=").append(name);
      }
    }
    return b.toString();
  }

  /**
   * Total bytes of the bootstrap and all data devices (what the cache holds once the image is
   * complete).
   */
  @JsonIgnore
  public long totalBytes() {
    long n = bootstrap.size();
    for (Descriptor d : blobs) {
      n += LazyImage.deviceSize(d);
    }
    return n;
  }

  /**
   * The default fsid of an image: derived from its manifest digest, so one image always reuses its
   * cache.
   */
  public static String defaultFsid(Digest manifestDigest) {
    return "lp-" + manifestDigest.hex().substring(0, 32);
  }
}

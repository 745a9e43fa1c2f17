package dev.lazypull.prefetch;

import com.fasterxml.jackson.annotation.JsonProperty;
import dev.lazypull.image.Digest;
import dev.lazypull.image.Json;
import dev.lazypull.sys.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * What an image read during its first seconds after mount, in first-access order: replayed as a
 * prefetch on the next mount so the data is there before the reader asks. Ranges name blobs by
 * digest, so a profile stays valid for any image sharing those blobs. Stored as {@code
 * <state>/profiles/<manifest hex>.json}.
 */
public record AccessProfile(
    @JsonProperty("version") int version,
    @JsonProperty("manifestDigest") String manifestDigest,
    @JsonProperty("windowMillis") long windowMillis,
    @JsonProperty("ranges") List<Range> ranges) {

  public record Range(
      @JsonProperty("blob") String blob,
      @JsonProperty("offset") long offset,
      @JsonProperty("length") long length) {}

  /**
   * Profiles larger than this are truncated when recorded (and refused when loaded). A range is at
   * most ~120 bytes of JSON, so a full profile stays under {@link Json#MAX_DOCUMENT_BYTES}, the
   * limit it is parsed with.
   */
  public static final int MAX_RANGES = 32_000;

  public AccessProfile {
    ranges = ranges == null ? List.of() : List.copyOf(ranges);
  }

  public long totalBytes() {
    return ranges.stream().mapToLong(Range::length).sum();
  }

  public static Path path(Path stateDir, Digest manifest) {
    return stateDir.resolve("profiles").resolve(manifest.hex() + ".json");
  }

  public static Optional<AccessProfile> load(Path stateDir, Digest manifest) throws IOException {
    Path p = path(stateDir, manifest);
    if (!Files.exists(p)) {
      return Optional.empty();
    }
    return Optional.of(parse(Files.readAllBytes(p), p.toString()));
  }

  /**
   * Decodes and checks a profile: version 1, at most {@link #MAX_RANGES} ranges, each naming a blob
   * by digest with a non-negative offset and a positive length.
   *
   * @param what names the source in errors (a file, a registry artifact)
   */
  public static AccessProfile parse(byte[] bytes, String what) throws IOException {
    AccessProfile profile = Json.parse(bytes, AccessProfile.class, what);
    if (profile.version() != 1 || profile.ranges().size() > MAX_RANGES) {
      throw new IOException(
          what
              + ": unsupported profile (version "
              + profile.version()
              + ", "
              + profile.ranges().size()
              + " ranges)");
    }
    try {
      Digest.parse(profile.manifestDigest());
      for (Range r : profile.ranges()) {
        Digest.parse(r.blob());
        if (r.offset() < 0 || r.length() <= 0) {
          throw new IOException(what + ": bad range " + r);
        }
      }
    } catch (IllegalArgumentException | NullPointerException e) {
      throw new IOException(what + ": " + e.getMessage(), e);
    }
    return profile;
  }

  public void save(Path stateDir) throws IOException {
    saveTo(path(stateDir, Digest.parse(manifestDigest)));
  }

  /**
   * Writes the profile to {@code p} atomically (a reader sees the old file or the whole new one).
   */
  public void saveTo(Path p) throws IOException {
    AtomicFiles.write(p, Json.write(this));
  }
}

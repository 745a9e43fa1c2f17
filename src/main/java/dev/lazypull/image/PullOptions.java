package dev.lazypull.image;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * Per-image registry settings given where an image is named ({@code lazypull mount --plain-http
 * --platform …}): carried in the daemon's {@code register} request, kept in the image's catalog
 * record (so a restarted daemon pulls it the same way) and shown by {@code status} and {@code
 * list}.
 *
 * @param plainHttp speak plain HTTP to the image's registry (its host: the daemon's registry client
 *     is per host)
 * @param platform {@code os/arch[/variant]} chosen from a multi-platform index, or null for the
 *     daemon's default
 */
public record PullOptions(
    @JsonProperty("plainHttp") @JsonInclude(JsonInclude.Include.NON_DEFAULT) boolean plainHttp,
    @JsonProperty("platform") @JsonInclude(JsonInclude.Include.NON_NULL) String platform) {

  /** Nothing asked for: the daemon's own registry settings. */
  public static final PullOptions DEFAULT = new PullOptions(false, null);

  public PullOptions {
    if (platform != null && platform.isBlank()) {
      platform = null;
    }
  }

  @JsonIgnore
  public boolean isDefault() {
    return !plainHttp && platform == null;
  }

  /** These options with anything {@code newer} asks for added (plain HTTP stays once asked for). */
  public PullOptions merge(PullOptions newer) {
    if (newer == null) {
      return this;
    }
    return new PullOptions(
        plainHttp || newer.plainHttp, newer.platform != null ? newer.platform : platform);
  }

  /** Human-readable, e.g. {@code plain-http, platform linux/arm64}; empty when default. */
  @Override
  public String toString() {
    StringBuilder b = new StringBuilder();
    if (plainHttp) {
      b.append("plain-http");
    }
    if (platform != null) {
      b.append(b.length() > 0 ? ", " : "").append("platform ").append(platform);
    }
    return b.toString();
  }
}

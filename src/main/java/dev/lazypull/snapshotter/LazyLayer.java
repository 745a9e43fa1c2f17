package dev.lazypull.snapshotter;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * How a committed snapshot is served lazily: the image's EROFS mount ({@link #IMAGE}: the bootstrap
 * layer, the whole merged filesystem of the image) or a layer that mount already holds ({@link
 * #PLACEHOLDER}: the data blobs and digest tables that follow the bootstrap in the manifest, empty
 * directories that no overlay lists).
 *
 * @param role {@link #IMAGE} or {@link #PLACEHOLDER}
 * @param image the reference the daemon registers: {@code HOST/REPO@sha256:…} of the lazypull
 *     manifest
 * @param fsid the daemon's fsid of the image (for its status), once registered
 * @param bootstrapBytes the bootstrap's size (held whole in the host cache while mounted)
 * @param bootstrap the bootstrap's digest: images sharing it share the mount (and the chain ID)
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record LazyLayer(
    @JsonProperty("role") String role,
    @JsonProperty("image") String image,
    @JsonProperty("fsid") String fsid,
    @JsonProperty("bootstrapBytes") long bootstrapBytes,
    @JsonProperty("bootstrap") String bootstrap) {
  public static final String IMAGE = "image";
  public static final String PLACEHOLDER = "placeholder";

  LazyLayer withFsid(String id) {
    return new LazyLayer(role, image, id, bootstrapBytes, bootstrap);
  }

  public boolean isImage() {
    return IMAGE.equals(role);
  }
}

package dev.lazypull.prefetch;

import dev.lazypull.catalog.ImageRecord;
import java.io.IOException;
import java.util.Optional;

/**
 * Finds an access profile for a newly registered image somewhere other than the state dir — next to
 * the image in its registry ({@link ProfileArtifacts#fetcher}). Called off the request path;
 * failures are logged and ignored (the image works without a profile, and records its own on first
 * mount).
 */
@FunctionalInterface
public interface ProfileFetcher {
  /** The image's profile, or empty when there is none. */
  Optional<AccessProfile> fetch(ImageRecord image) throws IOException;
}

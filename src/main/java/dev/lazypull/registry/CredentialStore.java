package dev.lazypull.registry;

import java.io.IOException;

/**
 * Looks up credentials for a registry host ({@code host[:port]}, Docker Hub as {@code docker.io}).
 * Called whenever a token is fetched or a Basic header built, so a store that re-reads its source
 * picks up changes without a restart.
 */
public interface CredentialStore {
  /** Credentials for {@code host}, or null for anonymous access. */
  Credentials lookup(String host) throws IOException;

  static CredentialStore anonymous() {
    return host -> null;
  }
}

package dev.lazypull.cache;

import java.io.IOException;

/** Another process owns (holds the lock of) the cache file: a running export, or another prefetch. */
public final class CacheFileInUseException extends IOException {
  public CacheFileInUseException(String message) {
    super(message);
  }
}

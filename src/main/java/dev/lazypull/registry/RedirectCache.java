package dev.lazypull.registry;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;
import okhttp3.HttpUrl;

/**
 * Where a blob's GET was last redirected (typically a presigned object-store URL), reused for later
 * range reads of the same blob until it fails or {@code ttl} passes — presigned URLs expire, and a
 * cached target that answers 401/403 is dropped and the read goes through the registry again.
 * Bounded: when full it is simply cleared.
 */
final class RedirectCache {
  private static final int MAX_ENTRIES = 4096;

  private record Entry(HttpUrl target, long expiresNanos) {}

  private final Map<String, Entry> entries = new ConcurrentHashMap<>();
  private final long ttlNanos;
  private final LongSupplier nanoClock;

  RedirectCache(long ttlNanos, LongSupplier nanoClock) {
    this.ttlNanos = ttlNanos;
    this.nanoClock = nanoClock;
  }

  HttpUrl get(String key) {
    Entry e = entries.get(key);
    if (e == null) {
      return null;
    }
    if (nanoClock.getAsLong() - e.expiresNanos >= 0) {
      entries.remove(key, e);
      return null;
    }
    return e.target;
  }

  void put(String key, HttpUrl target) {
    if (ttlNanos <= 0) {
      return;
    }
    if (entries.size() >= MAX_ENTRIES) {
      entries.clear();
    }
    entries.put(key, new Entry(target, nanoClock.getAsLong() + ttlNanos));
  }

  void remove(String key) {
    entries.remove(key);
  }
}

package dev.lazypull.sys;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Logs each distinct problem once at WARNING (later repeats at FINE): bad input from the kernel or
 * a peer must be visible, but must not flood the journal.
 */
public final class OnceLogger {
  private static final int MAX_KEYS = 1024;
  private final Logger log;
  private final Set<String> seen = ConcurrentHashMap.newKeySet();

  public OnceLogger(Logger log) {
    this.log = log;
  }

  public void warn(String key, String message) {
    if (seen.size() < MAX_KEYS && seen.add(key)) {
      log.warning(message);
    } else {
      log.log(Level.FINE, message);
    }
  }
}

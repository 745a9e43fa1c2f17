package dev.lazypull.sys;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Descriptors passed by a service manager (systemd socket activation or its fd store) per
 * sd_listen_fds(3): {@code LISTEN_PID} must be this process, {@code LISTEN_FDS} counts fds from 3,
 * {@code LISTEN_FDNAMES} names them (colon-separated).
 */
public final class ListenFds {
  public static final int SD_LISTEN_FDS_START = 3;

  private ListenFds() {}

  /** Name → fd of the passed descriptors; empty when none were passed to this process. */
  public static Map<String, Integer> fromEnvironment() {
    return parse(
        System.getenv("LISTEN_PID"),
        System.getenv("LISTEN_FDS"),
        System.getenv("LISTEN_FDNAMES"),
        Posix.getpid());
  }

  static Map<String, Integer> parse(String pid, String count, String names, int ownPid) {
    Map<String, Integer> out = new LinkedHashMap<>();
    if (pid == null || count == null) {
      return out;
    }
    try {
      if (Integer.parseInt(pid.trim()) != ownPid) {
        return out;
      }
      int n = Integer.parseInt(count.trim());
      if (n < 0 || n > 1024) {
        return out;
      }
      String[] nameList = names == null ? new String[0] : names.split(":", -1);
      for (int i = 0; i < n; i++) {
        String name = i < nameList.length && !nameList[i].isEmpty() ? nameList[i] : "unknown";
        out.putIfAbsent(name, SD_LISTEN_FDS_START + i);
      }
    } catch (NumberFormatException e) {
      return new LinkedHashMap<>();
    }
    return out;
  }
}

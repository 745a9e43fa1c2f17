package dev.lazypull.sys;

import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Thread factories for the pools and timers here: daemon threads (a worker stuck in I/O never keeps
 * the JVM from exiting), named so thread dumps and logs say what each one does.
 */
public final class DaemonThreads {
  private DaemonThreads() {}

  /**
   * Every thread named {@code name} (single-thread executors, timers, pools whose threads are
   * alike).
   */
  public static ThreadFactory named(String name) {
    return r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    };
  }

  /** Threads named {@code prefix1}, {@code prefix2}, … */
  public static ThreadFactory numbered(String prefix) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, prefix + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }
}

package dev.lazypull.cli;

import dev.lazypull.app.StandalonePrefetch;
import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigFile;
import dev.lazypull.config.ConfigNode;
import dev.lazypull.fetch.FetchStats;
import dev.lazypull.prefetch.CachePrefetch;
import dev.lazypull.registry.RegistryConfig;
import java.io.IOException;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * {@code lazypull prefetch IMAGE --standalone}: the command's side of {@link StandalonePrefetch} —
 * settings from the {@code [nbd]} table (the host cache and fetch settings), progress on the
 * terminal, a summary line, the exit status. Blocks until done.
 */
final class StandalonePrefetchRun {
  private StandalonePrefetchRun() {}

  static int run(PrefetchCommand c) throws Exception {
    NbdSettings s;
    RegistryConfig rc;
    try {
      ConfigNode file = ConfigFile.load(c.registry.config);
      NbdCommand flags =
          new NbdCommand(); // the [nbd] table decides the cache dir and fetch settings
      flags.cacheDir = c.cacheDir;
      s = NbdSettings.resolve(flags, file);
      rc = c.registry.registryConfig();
    } catch (ConfigException e) {
      System.err.println("lazypull prefetch: " + e.getMessage());
      return 2;
    }
    Logging.configure(s.logLevel());
    StandalonePrefetch p;
    try {
      p = StandalonePrefetch.plan(c.image, c.paths, s.cacheDir(), s.fetch(), s.cacheBudget(), rc);
    } catch (IOException e) {
      System.err.println("lazypull prefetch: " + e.getMessage());
      return 1;
    }
    try (p) {
      if (p.matched().files() > 0) {
        System.out.println(
            "matched " + p.matched().files() + " files, " + Units.human(p.matched().bytes()));
      }
      return fetch(c.image, p.prefetch(), p.stats(), p.cacheDir().toString());
    }
  }

  /** Runs the prefetch with progress; 0 when everything planned is cached, 1 otherwise. */
  private static int fetch(String name, CachePrefetch prefetch, FetchStats stats, String cacheDir)
      throws InterruptedException {
    boolean terminal = System.console() != null;
    long planned = prefetch.plannedBytes();
    long t0 = System.nanoTime();
    CompletableFuture<Void> done = prefetch.start();
    long lastPlain = t0;
    while (!done.isDone()) {
      try { // progress: woken by the end, or every tick to redraw
        done.get(terminal ? 250 : 100, TimeUnit.MILLISECONDS);
      } catch (TimeoutException | ExecutionException e) {
        // not done yet (a failed range is listed by errors())
      }
      long now = System.nanoTime();
      if (!done.isDone() && (terminal || now - lastPlain >= TimeUnit.SECONDS.toNanos(5))) {
        PrefetchCommand.print(name, prefetch.readyBytes(), planned, true, terminal);
        lastPlain = now;
      }
    }
    double secs = (System.nanoTime() - t0) / 1e9;
    long ready = prefetch.readyBytes();
    PrefetchCommand.print(name, ready, planned, false, terminal);
    if (terminal) {
      System.out.println();
    }
    long fetched = stats.bytesFetched.sum();
    System.out.printf(
        Locale.ROOT,
        "fetched %s in %.1f s (%.0f MiB/s) into %s%s%n",
        Units.human(fetched),
        secs,
        fetched / 1048576.0 / Math.max(secs, 1e-3),
        cacheDir,
        stats.chunksVerified.sum() > 0
            ? ", " + stats.chunksVerified.sum() + " chunks verified"
            : "");
    List<String> errors = prefetch.errors();
    for (String e : errors) {
      System.err.println("lazypull prefetch: " + e);
    }
    return errors.isEmpty() && ready == planned ? 0 : 1;
  }
}

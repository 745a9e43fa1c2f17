package dev.lazypull.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigFile;
import dev.lazypull.config.ConfigNode;
import dev.lazypull.control.ControlClient;
import dev.lazypull.fetch.BlobCacheGc;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code lazypull gc}: bring the daemon's cache, or with {@code --nbd} the NBD cache dir, within
 * its budget now.
 */
@Command(
    name = "gc",
    mixinStandardHelpOptions = true,
    description =
        "Cull least-recently-used cache files no mount is using until the cache fits its budget. "
            + "With --nbd: remove unused blob files of the NBD cache dir (no daemon needed).")
final class GcCommand implements Callable<Integer> {
  @Mixin SocketOption socket;

  @Option(
      names = "--budget",
      paramLabel = "SIZE",
      converter = Units.SizeConverter.class,
      description = "Shrink to this size now instead of the configured budget.")
  Long budget;

  @Option(
      names = "--nbd",
      description =
          "Collect the NBD exports' cache dir ([nbd] cache_dir, cache_budget) "
              + "instead of the daemon's cache.")
  boolean nbd;

  @Option(
      names = "--cache-dir",
      paramLabel = "DIR",
      description =
          "With --nbd: the cache dir (default: the "
              + "config's [nbd] cache_dir, else /var/cache/lazypull-nbd).")
  Path cacheDir;

  @Option(
      names = "--config",
      paramLabel = "FILE",
      description =
          "With --nbd: TOML config file (default: " + "/etc/lazypull/config.toml if it exists).")
  Path config;

  @Override
  public Integer call() throws Exception {
    if (nbd) {
      return collectNbdCache();
    }
    if (cacheDir != null || config != null) {
      System.err.println(
          "lazypull gc: --cache-dir and --config go with --nbd; the daemon uses its own settings");
      return 2;
    }
    var req = ControlClient.request("gc");
    if (budget != null) {
      req.put("budget", budget);
    }
    JsonNode r = new ControlClient(socket.socket).call(req).path("report");
    System.out.printf(
        "culled %d files (%s); cache %s -> %s, budget %s; %d in use%n",
        r.path("culled").asInt(),
        Units.human(r.path("bytesFreed").asLong()),
        Units.human(r.path("usageBefore").asLong()),
        Units.human(r.path("usageAfter").asLong()),
        r.path("budget").asLong() == 0 ? "none" : Units.human(r.path("budget").asLong()),
        r.path("inUse").asInt());
    return 0;
  }

  private int collectNbdCache() throws Exception {
    NbdSettings s;
    try {
      ConfigNode file = ConfigFile.load(config);
      NbdCommand flags = new NbdCommand();
      flags.cacheDir = cacheDir;
      flags.cacheBudget = budget;
      s = NbdSettings.resolve(flags, file);
    } catch (ConfigException e) {
      System.err.println("lazypull gc: " + e.getMessage());
      return 2;
    }
    if (!Files.isDirectory(s.cacheDir())) {
      System.err.println("lazypull gc: no NBD cache dir at " + s.cacheDir());
      return 1;
    }
    BlobCacheGc.Report r = BlobCacheGc.collect(s.cacheDir(), s.cacheBudget());
    System.out.printf(
        "removed %d files (%s); cache %s -> %s, budget %s; %d in use%n",
        r.removed(),
        Units.human(r.bytesFreed()),
        Units.human(r.usageBefore()),
        Units.human(r.usageAfter()),
        r.budget() == 0 ? "none" : Units.human(r.budget()),
        r.inUse());
    return r.budget() > 0 && r.usageAfter() > r.budget() ? 1 : 0;
  }
}

package dev.lazypull.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.app.Sources;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigFile;
import dev.lazypull.config.ConfigNode;
import dev.lazypull.registry.Platform;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * Registry flags of the commands that open images themselves ({@code inspect}, {@code copy}, {@code
 * pack}, {@code convert}, {@code profile}, {@code prefetch --standalone}): the config file's {@code
 * [registry]} table, overridden by {@code --plain-http} and {@code --platform}. Commands that hand
 * an image to the daemon ({@code mount}, {@code prefetch}) send {@code --plain-http} and {@code
 * --platform} along with it ({@link #putPull}); the daemon reads its own config file.
 */
final class RegistryOptions {
  @Option(
      names = "--config",
      paramLabel = "FILE",
      description =
          "TOML config file for the [registry] settings (default: /etc/lazypull/config.toml if it "
              + "exists).")
  Path config;

  @Option(
      names = "--plain-http",
      description =
          "Talk plain HTTP (no TLS) to every registry; for loopback or "
              + "test registries. Per-host: plain_http in a [[registry.host]] entry.")
  boolean plainHttp;

  @Option(
      names = "--platform",
      paramLabel = "OS/ARCH[/VARIANT]",
      description =
          "Which image of a multi-platform index to use (default: registry.platform, linux/amd64).")
  String platform;

  /** The effective registry settings. */
  RegistryConfig registryConfig() throws ConfigException {
    return registryConfig(null);
  }

  /**
   * The effective registry settings, with {@code fallbackPlatform} (when not null) used if neither
   * {@code --platform} nor the config file's {@code registry.platform} chooses one.
   */
  RegistryConfig registryConfig(String fallbackPlatform) throws ConfigException {
    ConfigNode file = ConfigFile.load(config);
    file.allowOnly(Settings.TOP_LEVEL);
    ConfigNode table = file.section("registry");
    RegistryConfig c = RegistryConfig.from(table).withPlainHttp(plainHttp);
    String chosen =
        platform != null
            ? platform
            : table.string("platform", null) == null ? fallbackPlatform : null;
    if (chosen != null) {
      try {
        c = c.withPlatform(chosen);
      } catch (IllegalArgumentException e) {
        throw new ConfigException("--platform: " + e.getMessage(), e);
      }
    }
    return c;
  }

  /**
   * Adds the per-image registry settings to a control request for the daemon ({@code "pull"}, see
   * docs/control-api.md); nothing when neither is given. A malformed platform is refused here.
   */
  static void putPull(ObjectNode req, boolean plainHttp, String platform) {
    if (!plainHttp && platform == null) {
      return;
    }
    ObjectNode pull = req.putObject("pull");
    if (plainHttp) {
      pull.put("plainHttp", true);
    }
    if (platform != null) {
      Platform.parse(platform);
      pull.put("platform", platform);
    }
  }

  /** {@link #putPull} with these options' {@code --plain-http} and {@code --platform}. */
  void putPull(ObjectNode req) {
    putPull(req, plainHttp, platform);
  }

  RegistryClient client() throws ConfigException, IOException {
    return RegistryClient.create(registryConfig());
  }

  /** Local layouts and, through {@code client}, registry references. */
  static ImageSources sources(RegistryClient client) {
    return Sources.over(client);
  }
}

package dev.lazypull.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.toml.TomlMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Reads the TOML config file (docs/config.md) into a {@link ConfigNode} tree. A missing file at the
 * default path means "all defaults"; a missing file given explicitly, or one that does not parse,
 * is an error.
 */
public final class ConfigFile {
  public static final Path DEFAULT_PATH = Path.of("/etc/lazypull/config.toml");
  private static final long MAX_BYTES = 1 << 20;

  private ConfigFile() {}

  /**
   * The file a {@code --config} flag names ({@code flag}, which must exist), else {@link
   * #DEFAULT_PATH} if it exists, else an empty config.
   */
  public static ConfigNode load(Path flag) throws ConfigException {
    return flag != null ? load(flag, true) : load(DEFAULT_PATH, false);
  }

  public static ConfigNode load(Path path, boolean explicit) throws ConfigException {
    if (path == null) {
      return ConfigNode.empty("");
    }
    try {
      if (!Files.exists(path) && !explicit) {
        return ConfigNode.empty("");
      }
      if (Files.size(path) > MAX_BYTES) {
        throw new ConfigException(path + ": larger than " + MAX_BYTES + " bytes");
      }
      JsonNode tree = new TomlMapper().readTree(Files.readAllBytes(path));
      return new ConfigNode(tree, "", path.toString());
    } catch (NoSuchFileException e) {
      throw new ConfigException(path + ": no such config file", e);
    } catch (IOException e) {
      String msg = e.getMessage() == null ? e.toString() : e.getMessage().split("\n")[0];
      throw new ConfigException(path + ": not valid TOML: " + msg, e);
    }
  }
}

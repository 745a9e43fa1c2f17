package dev.lazypull.config;

/**
 * A config file the daemon refuses: unknown key, wrong type, value out of range. Names the key and
 * file.
 */
public final class ConfigException extends Exception {
  private static final long serialVersionUID = 1L;

  public ConfigException(String message) {
    super(message);
  }

  public ConfigException(String message, Throwable cause) {
    super(message, cause);
  }
}

package dev.lazypull.cli;

import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * {@code --socket}: where the daemon's control API listens. Shared by every command that talks to
 * it.
 */
final class SocketOption {
  static final String DEFAULT = "/run/lazypull/lazypull.sock";

  @Option(
      names = "--socket",
      paramLabel = "PATH",
      defaultValue = DEFAULT,
      description = "Control socket of the daemon (default: ${DEFAULT-VALUE}).")
  Path socket;
}

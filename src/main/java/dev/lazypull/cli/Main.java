package dev.lazypull.cli;

import dev.lazypull.Version;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code lazypull} command line. */
@Command(
    name = "lazypull",
    mixinStandardHelpOptions = true,
    versionProvider = Main.VersionProvider.class,
    description =
        "Start EROFS images before they are downloaded: serve cachefiles on-demand READs (fscache "
            + "mode) or an NBD export from OCI registries and layouts.",
    subcommands = {
      DaemonCommand.class,
      MountCommand.class,
      UmountCommand.class,
      StatusCommand.class,
      InspectCommand.class,
      ImportCommand.class,
      SnapshotCommand.class,
      ForkCommand.class,
      PackCommand.class,
      ConvertCommand.class,
      IndexCommand.class,
      NbdCommand.class,
      PrefetchCommand.class,
      GcCommand.class,
      EvictCommand.class,
      CopyCommand.class,
      SnapshotterCommand.class,
      PullCommand.class,
      ProfileCommand.class,
      TrainCdsCommand.class,
      CommandLine.HelpCommand.class
    })
public final class Main implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "missing command");
  }

  public static void main(String[] args) {
    System.exit(run(args));
  }

  /** Runs a command line and returns the exit code (for tests). */
  public static int run(String... args) {
    CommandLine cl = new CommandLine(new Main());
    cl.setExecutionExceptionHandler(
        (e, cmd, parsed) -> {
          cmd.getErr()
              .println(
                  "lazypull "
                      + cmd.getCommandName()
                      + ": "
                      + (e.getMessage() == null ? e : e.getMessage()));
          if (System.getenv("LAZYPULL_DEBUG") != null) {
            e.printStackTrace(cmd.getErr());
          }
          return 1;
        });
    return cl.execute(args);
  }

  static final class VersionProvider implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      return new String[] {"lazypull " + Version.VERSION + " (Java " + Runtime.version() + ")"};
    }
  }
}

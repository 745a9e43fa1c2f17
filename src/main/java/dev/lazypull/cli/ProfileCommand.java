package dev.lazypull.cli;

import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigFile;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageReference;
import dev.lazypull.prefetch.AccessProfile;
import dev.lazypull.prefetch.ProfileArtifacts;
import dev.lazypull.registry.RawManifest;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryImageSource;
import dev.lazypull.registry.Repository;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code lazypull profile push|pull IMAGE}: moves an image's access profile (what it read in its
 * first seconds after mount, replayed as a prefetch on later mounts) between the state dir and the
 * image's registry repository, where it is stored as a small OCI artifact tagged {@code
 * sha256-<manifest hex>.lazypull-profile}.
 */
@Command(
    name = "profile",
    mixinStandardHelpOptions = true,
    description =
        "Push or pull an image's access profile (recorded by the daemon on first mount) as an OCI "
            + "artifact in the image's repository, tagged sha256-<manifest hex>.lazypull-profile. The daemon pulls it "
            + "by itself when an image without a local profile is registered.",
    subcommands = {ProfileCommand.Push.class, ProfileCommand.Pull.class})
final class ProfileCommand implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Option(
      names = "--state-dir",
      paramLabel = "DIR",
      scope = CommandLine.ScopeType.INHERIT,
      description =
          "The daemon's state dir holding profiles/<manifest hex>.json (default: daemon.state_dir, "
              + "/var/lib/lazypull).")
  Path stateDir;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(
        spec.commandLine(), "missing subcommand: push or pull");
  }

  /** The image and the registry client, resolved once for either direction. */
  abstract static class Base implements Callable<Integer> {
    @ParentCommand ProfileCommand parent;

    @Parameters(index = "0", paramLabel = "IMAGE", description = "HOST/REPO[:TAG|@DIGEST].")
    String image;

    @Option(
        names = "--file",
        paramLabel = "FILE",
        description = "Read (push) or write (pull) this file instead of the state dir's profile.")
    Path file;

    @Mixin RegistryOptions registry;

    abstract int run(RegistryClient client, Repository repo, RawManifest manifest, Path local)
        throws Exception;

    @Override
    public Integer call() throws Exception {
      ImageReference ref = BuildOptions.parseReference(image);
      if (!(ref instanceof ImageReference.Registry r)) {
        System.err.println(
            "lazypull profile: "
                + image
                + " is not a registry reference; profiles are stored next to "
                + "images in their registry repository");
        return 2;
      }
      Path stateDir;
      RegistryClient client;
      try {
        DaemonCommand flags = new DaemonCommand(); // state_dir as the daemon resolves it
        flags.stateDir = parent.stateDir;
        stateDir = Settings.resolve(flags, ConfigFile.load(registry.config)).daemon().stateDir();
        client = registry.client();
      } catch (ConfigException e) {
        System.err.println("lazypull profile: " + e.getMessage());
        return 2;
      }
      try (client) {
        RegistryImageSource source = new RegistryImageSource(client, r);
        RawManifest m = source.resolveManifest();
        Path local = file != null ? file : AccessProfile.path(stateDir, m.digest());
        return run(client, source.repository(), m, local);
      }
    }
  }

  @Command(
      name = "push",
      mixinStandardHelpOptions = true,
      description =
          "Push the image's access profile (from the state dir, or --file) to its repository.")
  static final class Push extends Base {
    @Override
    int run(RegistryClient client, Repository repo, RawManifest m, Path local) throws Exception {
      if (!Files.isRegularFile(local)) {
        System.err.println(
            "lazypull profile: no access profile at "
                + local
                + " (the daemon records one on the "
                + "image's first mount, under the state dir's profiles/)");
        return 1;
      }
      AccessProfile p = AccessProfile.parse(Files.readAllBytes(local), local.toString());
      Digest d =
          ProfileArtifacts.push(
              client, repo, new Descriptor(m.mediaType(), m.digest(), m.bytes().length), p);
      System.out.println(
          "pushed "
              + p.ranges().size()
              + " ranges ("
              + Units.human(p.totalBytes())
              + ") as "
              + repo
              + ":"
              + ProfileArtifacts.tag(m.digest())
              + "@"
              + d);
      return 0;
    }
  }

  @Command(
      name = "pull",
      mixinStandardHelpOptions = true,
      description =
          "Pull the image's access profile from its repository into the state dir (or --file).")
  static final class Pull extends Base {
    @Override
    int run(RegistryClient client, Repository repo, RawManifest m, Path local) throws Exception {
      Optional<AccessProfile> p = ProfileArtifacts.pull(client, repo, m.digest());
      if (p.isEmpty()) {
        System.err.println(
            "lazypull profile: " + repo + " has no " + ProfileArtifacts.tag(m.digest()));
        return 1;
      }
      p.get().saveTo(local);
      System.out.println(
          "pulled "
              + p.get().ranges().size()
              + " ranges ("
              + Units.human(p.get().totalBytes())
              + ") into "
              + local);
      return 0;
    }
  }
}

package dev.lazypull.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.LazyImage;
import dev.lazypull.registry.CredentialStore;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import dev.lazypull.registry.RegistryImageSource;
import dev.lazypull.registry.Sleeper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Lazypull images in a test registry ({@link DockerRegistryFixture}): a hermetic config file (an
 * empty docker config, so no credentials of the machine are used), {@code pack --push}, resolving
 * what the registry serves, and the on-disk file of a blob (to alter it behind the registry's
 * back).
 */
public final class RegistryImages {
  private RegistryImages() {}

  /**
   * Writes {@code DIR/docker.json} ({@code {}}) and {@code DIR/lazypull.toml} naming it in {@code
   * [registry]}, followed by {@code extra} TOML; returns the TOML file.
   */
  public static Path config(Path dir, String extra) throws IOException {
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("docker.json"), "{}");
    Path toml = dir.resolve("lazypull.toml");
    Files.writeString(
        toml,
        "[registry]\ndocker_config = \""
            + dir.resolve("docker.json")
            + "\"\n"
            + (extra == null ? "" : extra));
    return toml;
  }

  /**
   * {@code lazypull pack TREE --push REF} (plain HTTP, {@code --mtime 0}); fails the test if it
   * fails.
   */
  public static LazyImage packAndPush(
      Path tree, String ref, Path toml, Path scratch, String... extra) throws IOException {
    List<String> args =
        new ArrayList<>(
            List.of(
                "pack",
                tree.toString(),
                "--push",
                ref,
                "--plain-http",
                "--config",
                toml.toString(),
                "--mtime",
                "0",
                "--scratch-dir",
                scratch.toString()));
    args.addAll(List.of(extra));
    CliRun.Result r = CliRun.run(args.toArray(String[]::new));
    assertEquals(0, r.code(), r.err());
    return resolve(ref);
  }

  /** The lazypull image {@code ref} as a plain-HTTP registry serves it (anonymously). */
  public static LazyImage resolve(String ref) throws IOException {
    try (RegistryClient client =
        new RegistryClient(
            RegistryConfig.defaults().withPlainHttp(true),
            CredentialStore.anonymous(),
            Sleeper.REAL)) {
      return new RegistryImageSource(client, (ImageReference.Registry) ImageReference.parse(ref))
          .resolve();
    }
  }

  /** Bytes of every blob the image reads (bootstrap and data blobs). */
  public static long imageBytes(LazyImage img) {
    return img.allBlobs().stream().mapToLong(Descriptor::size).sum();
  }

  /** Where the registry's filesystem storage keeps a blob's bytes. */
  public static Path blobData(DockerRegistryFixture reg, Digest d) {
    return reg.dir()
        .resolve(
            "storage/docker/registry/v2/blobs/sha256/"
                + d.hex().substring(0, 2)
                + "/"
                + d.hex()
                + "/data");
  }
}

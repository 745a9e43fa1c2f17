package dev.lazypull.image;

import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * Where an image lives: a local OCI image layout ({@code oci:DIR[:TAG]}) or a registry ({@code
 * HOST[:PORT]/REPO[:TAG|@sha256:…]}, docker-style defaults).
 */
public sealed interface ImageReference {
  /** The reference in its canonical text form. */
  String canonical();

  static ImageReference parse(String text) {
    if (text == null || text.isBlank()) {
      throw new IllegalArgumentException("empty image reference");
    }
    if (text.startsWith("oci:")) {
      return OciLayout.parse(text.substring(4));
    }
    return Registry.parse(text);
  }

  /**
   * {@code oci:DIR[:TAG]}; the tag is the {@code org.opencontainers.image.ref.name} annotation in
   * index.json.
   */
  record OciLayout(Path dir, String tag) implements ImageReference {
    static OciLayout parse(String rest) {
      if (rest.isEmpty()) {
        throw new IllegalArgumentException("oci: reference without a directory");
      }
      int slash = rest.lastIndexOf('/');
      int colon = rest.lastIndexOf(':');
      if (colon > slash && colon > 0) {
        String tag = rest.substring(colon + 1);
        if (tag.isEmpty()) {
          throw new IllegalArgumentException("oci:" + rest + ": empty tag");
        }
        return new OciLayout(Path.of(rest.substring(0, colon)), tag);
      }
      return new OciLayout(Path.of(rest), null);
    }

    @Override
    public String canonical() {
      return "oci:" + dir.toAbsolutePath().normalize() + (tag == null ? "" : ":" + tag);
    }
  }

  /**
   * A registry reference. {@code registry} is the name users write (docker.io for Docker Hub);
   * {@link #apiHost()} is the host to talk to.
   */
  record Registry(String registry, String repository, String tag, Digest digest)
      implements ImageReference {
    private static final Pattern REPO =
        Pattern.compile(
            "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*)*");
    private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._-]{0,127}");
    public static final String DOCKER_HUB = "docker.io";

    public Registry {
      if (!REPO.matcher(repository).matches() || repository.length() > 255) {
        throw new IllegalArgumentException("invalid repository name: " + repository);
      }
      if (tag != null && !TAG.matcher(tag).matches()) {
        throw new IllegalArgumentException("invalid tag: " + tag);
      }
      if (tag == null && digest == null) {
        tag = "latest";
      }
    }

    static Registry parse(String text) {
      String rest = text;
      Digest digest = null;
      int at = rest.indexOf('@');
      if (at >= 0) {
        digest = Digest.parse(rest.substring(at + 1));
        rest = rest.substring(0, at);
      }
      String tag = null;
      int slash = rest.lastIndexOf('/');
      int colon = rest.lastIndexOf(':');
      if (colon > slash) {
        tag = rest.substring(colon + 1);
        rest = rest.substring(0, colon);
      }
      String registry;
      String repository;
      int first = rest.indexOf('/');
      String head = first < 0 ? "" : rest.substring(0, first);
      if (first >= 0 && (head.contains(".") || head.contains(":") || head.equals("localhost"))) {
        registry = head;
        repository = rest.substring(first + 1);
      } else {
        registry = DOCKER_HUB;
        repository = rest;
      }
      if (registry.equals("index.docker.io") || registry.equals("registry-1.docker.io")) {
        registry = DOCKER_HUB;
      }
      if (registry.equals(DOCKER_HUB) && !repository.contains("/")) {
        repository = "library/" + repository;
      }
      return new Registry(registry, repository, tag, digest);
    }

    /** host[:port] of the HTTP API ({@code registry-1.docker.io} for Docker Hub). */
    public String apiHost() {
      return registry.equals(DOCKER_HUB) ? "registry-1.docker.io" : registry;
    }

    /** What to ask the manifest endpoint for: the digest if pinned, else the tag. */
    public String manifestReference() {
      return digest != null ? digest.toString() : tag;
    }

    @Override
    public String canonical() {
      return registry
          + "/"
          + repository
          + (tag == null ? "" : ":" + tag)
          + (digest == null ? "" : "@" + digest);
    }
  }
}

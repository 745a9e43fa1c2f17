package dev.lazypull.prefetch;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.Json;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.registry.BlobContent;
import dev.lazypull.registry.ImagePusher;
import dev.lazypull.registry.RawManifest;
import dev.lazypull.registry.RegistryBlobSource;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryException;
import dev.lazypull.registry.Repository;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;

/**
 * Access profiles stored next to their image in its registry repository (docs/format.md): a tiny
 * OCI artifact — an image manifest with {@code artifactType} {@value #ARTIFACT_TYPE}, the empty
 * config and one layer holding the profile JSON — tagged {@code sha256-<image manifest
 * hex>.lazypull-profile} (the cosign convention: registries without the referrers API, such as
 * distribution 2.8, find it by tag) and naming the image as its {@code subject} (registries with
 * the referrers API list it there too).
 *
 * <p>Pulls trust nothing: the artifact must have that shape, the profile blob is size-limited and
 * checked against its digest, and the profile must be for the image asked about.
 */
public final class ProfileArtifacts {
  public static final String ARTIFACT_TYPE = "application/vnd.lazypull.access-profile.v1+json";

  /**
   * A profile is parsed as one JSON document: {@link AccessProfile#MAX_RANGES} ranges fit in this.
   */
  public static final long MAX_PROFILE_BYTES = Json.MAX_DOCUMENT_BYTES;

  private static final byte[] EMPTY = "{}".getBytes(StandardCharsets.US_ASCII);
  private static final String TAG_SUFFIX = ".lazypull-profile";

  private ProfileArtifacts() {}

  /**
   * Fetches the profiles of registry images through {@code client}; images in local layouts have
   * none.
   */
  public static ProfileFetcher fetcher(RegistryClient client) {
    return image -> {
      ImageReference ref = ImageReference.parse(image.reference());
      if (!(ref instanceof ImageReference.Registry r)) {
        return Optional.empty();
      }
      return pull(client, Repository.of(r), image.manifestDigest());
    };
  }

  /** The tag of the profile of the image whose manifest is {@code manifest}. */
  public static String tag(Digest manifest) {
    return "sha256-" + manifest.hex() + TAG_SUFFIX;
  }

  /**
   * The artifact manifest's exact bytes (sorted keys: the same profile always gives the same
   * digest).
   */
  static byte[] manifest(Descriptor subject, Descriptor profile) {
    ObjectNode m = Json.MAPPER.createObjectNode();
    m.put("schemaVersion", 2);
    m.put("mediaType", MediaTypes.OCI_MANIFEST);
    m.put("artifactType", ARTIFACT_TYPE);
    m.set(
        "config",
        Json.MAPPER.valueToTree(
            new Descriptor(MediaTypes.OCI_EMPTY, Digest.of(EMPTY), EMPTY.length)));
    m.putArray("layers").add(Json.MAPPER.valueToTree(profile));
    m.set(
        "subject",
        Json.MAPPER.valueToTree(
            new Descriptor(subject.mediaType(), subject.digest(), subject.size())));
    m.putObject("annotations").put("dev.lazypull.profile.manifest", subject.digest().toString());
    return Json.write(m);
  }

  /**
   * Pushes {@code profile} as the artifact of the image {@code subject} (its manifest's descriptor)
   * in {@code repo}: the empty config and the profile blob, then the manifest under {@link #tag}.
   *
   * @return the artifact manifest's digest
   */
  public static Digest push(
      RegistryClient client, Repository repo, Descriptor subject, AccessProfile profile)
      throws IOException {
    if (!subject.digest().toString().equals(profile.manifestDigest())) {
      throw new IOException(
          "the profile is for image " + profile.manifestDigest() + ", not " + subject.digest());
    }
    byte[] bytes = Json.write(profile);
    Descriptor blob = new Descriptor(ARTIFACT_TYPE, Digest.of(bytes), bytes.length);
    ImagePusher pusher = client.pusher();
    pusher.pushBlob(
        repo,
        new Descriptor(MediaTypes.OCI_EMPTY, Digest.of(EMPTY), EMPTY.length),
        BlobContent.of(EMPTY),
        null);
    pusher.pushBlob(repo, blob, BlobContent.of(bytes), null);
    return pusher.pushManifest(
        repo, manifest(subject, blob), MediaTypes.OCI_MANIFEST, List.of(tag(subject.digest())));
  }

  /**
   * The profile pushed for the image {@code imageManifest} in {@code repo}, or empty when there is
   * none (404).
   *
   * @throws IOException if the registry fails, or the artifact or profile is malformed or for
   *     another image
   */
  public static Optional<AccessProfile> pull(
      RegistryClient client, Repository repo, Digest imageManifest) throws IOException {
    String tag = tag(imageManifest);
    RawManifest raw;
    try {
      raw = client.fetchManifest(repo, tag, null);
    } catch (RegistryException e) {
      if (e.isNotFound()) {
        return Optional.empty();
      }
      throw e;
    }
    String what = repo + ":" + tag;
    if (!MediaTypes.isManifest(raw.mediaType())) {
      throw new IOException(what + " is " + raw.mediaType() + ", not an artifact manifest");
    }
    Manifest m = Json.parse(raw.bytes(), Manifest.class, what);
    List<Descriptor> layers = m.layers();
    if (layers.size() != 1 || !ARTIFACT_TYPE.equals(layers.get(0).mediaType())) {
      throw new IOException(
          what + ": not a lazypull access profile (want one layer of type " + ARTIFACT_TYPE + ")");
    }
    Descriptor blob = layers.get(0);
    byte[] bytes =
        new RegistryBlobSource(client, repo).readVerified(blob, MAX_PROFILE_BYTES, "profile blob");
    AccessProfile p = AccessProfile.parse(bytes, what);
    if (!imageManifest.toString().equals(p.manifestDigest())) {
      throw new IOException(
          what + ": the profile is for image " + p.manifestDigest() + ", not " + imageManifest);
    }
    return Optional.of(p);
  }
}

package dev.lazypull.index;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.blob.ImageSource;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.oci.OciLayout;
import dev.lazypull.pack.ImageOutput;
import dev.lazypull.pack.Progress;
import dev.lazypull.registry.RawManifest;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryException;
import dev.lazypull.registry.RegistryImageSource;
import dev.lazypull.registry.Repository;
import java.io.IOException;
import java.nio.channels.Channels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.logging.Logger;

/**
 * Serving unmodified images through side-car indexes, for one process: its {@link IndexStore} and
 * {@link SpanCache}, and {@link #wrap}, which makes any image source index-aware. A wrapped source
 * resolves a lazypull image as before; an ordinary image to the image its index describes (the
 * bootstrap and one virtual device per layer with file data), the index found — in this order —
 * through the registry's referrers API, the referrers tag schema ({@code sha256-<hex>}, an index of
 * referrers), the artifact's own tag ({@code sha256-<hex>.lazypull-index}; in an {@code oci:}
 * layout, the same tag in its index.json), then the local store. Its blobs are the source's plus
 * the devices ({@link IndexedBlobSource}).
 */
public final class IndexedImages {
  private static final Logger LOG = Logger.getLogger(IndexedImages.class.getName());

  private final IndexStore store;
  private final SpanCache spans;

  /**
   * @param store the local store (null: none; parts are then kept in memory)
   */
  public IndexedImages(IndexStore store, SpanCache spans) {
    this.store = store;
    this.spans = spans;
  }

  /** The store under the host cache {@code cacheDir}, a default span cache. */
  public static IndexedImages inCache(Path cacheDir) {
    return new IndexedImages(IndexStore.inCache(cacheDir), new SpanCache(SpanCache.DEFAULT_BUDGET));
  }

  public IndexStore store() {
    return store;
  }

  public SpanCache spans() {
    return spans;
  }

  public Source wrap(ImageSource base, String reference) {
    return base instanceof Source s ? s : new Source(base, reference);
  }

  /**
   * The image a reference names, as indexing needs it: its manifest's descriptor (the index's
   * subject) and content.
   */
  public record Subject(String reference, Descriptor descriptor, Manifest manifest) {
    public boolean isLazypull() {
      return !manifest.layers().isEmpty()
          && MediaTypes.EROFS_BOOTSTRAP.equals(manifest.layers().get(0).mediaType());
    }
  }

  /** An index-aware image source. */
  public final class Source implements ImageSource {
    private final ImageSource base;
    private final String reference;
    private final IndexedBlobSource blobs;

    private Source(ImageSource base, String reference) {
      this.base = base;
      this.reference = reference;
      this.blobs = new IndexedBlobSource(base.blobs(), store, spans);
    }

    public ImageSource base() {
      return base;
    }

    @Override
    public IndexedBlobSource blobs() {
      return blobs;
    }

    @Override
    public LazyImage resolve() throws IOException {
      return resolve(false, null);
    }

    /**
     * Resolves the image; an ordinary image without an index is an error saying how to make one,
     * unless {@code indexLocally}: then one is built now from the image's layers into the local
     * store.
     */
    public LazyImage resolve(boolean indexLocally, Progress progress) throws IOException {
      if (!(base instanceof RegistryImageSource) && !(base instanceof OciLayout)) {
        return base.resolve();
      }
      Subject s = subject();
      if (s.isLazypull()) {
        return LazyImage.of(reference, s.descriptor().digest(), s.manifest());
      }
      Optional<IndexArtifact.Parsed> found = findIndex(s);
      if (found.isPresent()) {
        return found.get().image(reference);
      }
      if (!indexLocally || store == null) {
        throw new InvalidImageException(
            reference
                + " ("
                + s.descriptor().digest()
                + ") is an ordinary OCI image "
                + "without a lazypull index: make one with `lazypull index "
                + reference
                + " --push` (or --output "
                + "oci:DIR), or mount it with --index-locally to build one on this host");
      }
      IndexBuilder.Result r;
      try (ImageOutput out = store.output(s.descriptor().digest())) {
        r =
            build(
                s,
                IndexBuilder.Options.defaults(),
                out,
                progress != null ? progress : Progress.silent());
      }
      LOG.info(
          "indexed "
              + reference
              + " locally: "
              + r.manifest().digest()
              + " ("
              + r.indexBytes()
              + " bytes)");
      return IndexArtifact.parse(
              r.manifestBytes(),
              s.descriptor(),
              s.manifest().layers(),
              "local index of " + reference)
          .image(reference);
    }

    /** The image's manifest, read and checked against its digest. */
    public Subject subject() throws IOException {
      if (base instanceof RegistryImageSource r) {
        RawManifest m = r.resolveManifest();
        if (!MediaTypes.isManifest(m.mediaType())) {
          throw new InvalidImageException(
              reference + ": " + m.mediaType() + " is not an image manifest");
        }
        Manifest manifest =
            Json.parse(m.bytes(), Manifest.class, reference + " manifest " + m.digest());
        return new Subject(
            reference, new Descriptor(m.mediaType(), m.digest(), m.bytes().length), manifest);
      }
      OciLayout o = (OciLayout) base;
      Descriptor d = o.findManifest();
      byte[] bytes = o.readVerified(d);
      Manifest manifest = Json.parse(bytes, Manifest.class, reference + " manifest " + d.digest());
      return new Subject(reference, new Descriptor(d.mediaType(), d.digest(), d.size()), manifest);
    }

    /** Builds the index of {@code s} into {@code out}, reading each layer once from this source. */
    public IndexBuilder.Result build(
        Subject s, IndexBuilder.Options o, ImageOutput out, Progress progress) throws IOException {
      return IndexBuilder.build(
          reference,
          s.descriptor(),
          s.manifest().layers(),
          l -> Channels.newInputStream(base.blobs().openRange(l, 0, l.size())),
          o,
          out,
          progress);
    }

    /**
     * The index of {@code s}: published next to it, or in the local store; checked against the
     * image.
     */
    public Optional<IndexArtifact.Parsed> findIndex(Subject s) throws IOException {
      Optional<byte[]> bytes = Optional.empty();
      String where = null;
      if (base instanceof RegistryImageSource r) {
        Optional<RawManifest> m =
            RegistryIndexes.find(r.client(), r.repository(), s.descriptor().digest());
        if (m.isPresent()) {
          bytes = Optional.of(m.get().bytes());
          where = r.repository() + " index " + m.get().digest();
        }
      } else if (base instanceof OciLayout o) {
        OciLayout tagged = new OciLayout(o.dir(), IndexArtifact.localTag(s.descriptor().digest()));
        try {
          Descriptor d = tagged.findManifest();
          bytes = Optional.of(tagged.readVerified(d));
          where = "oci:" + o.dir() + " index " + d.digest();
        } catch (InvalidImageException e) {
          // not in the image's layout
        }
      }
      if (bytes.isEmpty() && store != null) {
        bytes = store.find(s.descriptor().digest());
        where = "local index of " + reference + " in " + store.dir();
      }
      if (bytes.isEmpty()) {
        return Optional.empty();
      }
      return Optional.of(
          IndexArtifact.parse(bytes.get(), s.descriptor(), s.manifest().layers(), where));
    }
  }

  /** Finding and publishing indexes in a registry repository. */
  public static final class RegistryIndexes {
    private RegistryIndexes() {}

    /** The referrers tag schema's tag: {@code sha256-<hex>}. */
    public static String referrersTag(Digest subject) {
      return "sha256-" + subject.hex();
    }

    /**
     * The newest index of {@code subject} in {@code repo}: referrers API, referrers tag, the
     * artifact's tag.
     */
    public static Optional<RawManifest> find(RegistryClient client, Repository repo, Digest subject)
        throws IOException {
      Optional<RawManifest> referrers =
          client.fetchReferrers(repo, subject, IndexArtifact.ARTIFACT_TYPE);
      if (referrers.isEmpty()) {
        referrers = manifest(client, repo, referrersTag(subject));
      }
      if (referrers.isPresent()) {
        List<Digest> candidates = candidates(referrers.get(), repo + " referrers of " + subject);
        if (!candidates.isEmpty()) {
          Digest d = candidates.get(candidates.size() - 1);
          return Optional.of(client.fetchManifest(repo, d.toString(), d));
        }
      }
      return manifest(client, repo, IndexArtifact.localTag(subject));
    }

    private static Optional<RawManifest> manifest(
        RegistryClient client, Repository repo, String tag) throws IOException {
      try {
        return Optional.of(client.fetchManifest(repo, tag, null));
      } catch (RegistryException e) {
        if (e.isNotFound()) {
          return Optional.empty();
        }
        throw e;
      }
    }

    /** The lazypull indexes an image index of referrers lists, in its order. */
    private static List<Digest> candidates(RawManifest index, String what) throws IOException {
      List<Digest> out = new ArrayList<>();
      if (!MediaTypes.isIndex(index.mediaType())) {
        return out;
      }
      JsonNode root = Json.MAPPER.readTree(index.bytes());
      for (JsonNode m : root.path("manifests")) {
        if (IndexArtifact.ARTIFACT_TYPE.equals(m.path("artifactType").asText(null))) {
          try {
            out.add(Digest.parse(m.path("digest").asText(null)));
          } catch (IllegalArgumentException e) {
            throw new InvalidIndexException(what + ": bad digest " + m.path("digest"));
          }
        }
      }
      return out;
    }

    /**
     * Makes an index pushed as {@code artifact} (tagged already) findable by {@code subject}:
     * registries with the referrers API list it by its subject; for the others the referrers tag's
     * image index gets its descriptor (replacing older lazypull indexes, keeping other artifacts'
     * entries).
     */
    public static void link(
        RegistryClient client, Repository repo, Digest subject, Descriptor artifact)
        throws IOException {
      if (client.fetchReferrers(repo, subject, IndexArtifact.ARTIFACT_TYPE).isPresent()) {
        return;
      }
      String tag = referrersTag(subject);
      ObjectNode index = Json.MAPPER.createObjectNode();
      index.put("schemaVersion", 2);
      index.put("mediaType", MediaTypes.OCI_INDEX);
      ArrayNode list = index.putArray("manifests");
      Optional<RawManifest> existing = manifest(client, repo, tag);
      if (existing.isPresent() && MediaTypes.isIndex(existing.get().mediaType())) {
        for (JsonNode m : Json.MAPPER.readTree(existing.get().bytes()).path("manifests")) {
          if (!IndexArtifact.ARTIFACT_TYPE.equals(m.path("artifactType").asText(null))) {
            list.add(m);
          }
        }
      }
      ObjectNode mine = list.addObject();
      mine.put("mediaType", artifact.mediaType());
      mine.put("digest", artifact.digest().toString());
      mine.put("size", artifact.size());
      mine.put("artifactType", IndexArtifact.ARTIFACT_TYPE);
      client.pusher().pushManifest(repo, Json.write(index), MediaTypes.OCI_INDEX, List.of(tag));
    }
  }
}

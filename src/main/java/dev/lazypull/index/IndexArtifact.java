package dev.lazypull.index;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.fetch.ChunkTables;
import dev.lazypull.gzindex.SpanTable;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The side-car index of an unmodified OCI image (docs/format.md, "Side-car indexes"): an OCI image
 * manifest with {@code artifactType} {@value #ARTIFACT_TYPE}, the empty config, {@code subject} =
 * the image's manifest, and as layers the EROFS bootstrap of the image's merged tree, then per
 * image layer that has file data its gzip checkpoints (SOCI zinfo v2) and span table (gzip layers
 * only), its {@link DeviceMap} and the chunk digest table of its virtual device.
 */
public final class IndexArtifact {
  public static final String ARTIFACT_TYPE = "application/vnd.lazypull.index.v1";

  /** SOCI / erofs-utils zinfo, version 2 layout, of one gzip layer. */
  public static final String ZINFO = "application/vnd.lazypull.gzip.zinfo.v2";

  /** lazypull's span table to a zinfo ({@link SpanTable}). */
  public static final String SPANS = "application/vnd.lazypull.gzip.spans.v1";

  /** A layer's {@link DeviceMap}. */
  public static final String DEVICE_MAP = "application/vnd.lazypull.device-map.v1";

  /**
   * The media type of a virtual device's descriptor in a {@link LazyImage} and the catalog: a data
   * blob that is not stored anywhere but assembled from the image layer its device map names. Never
   * a layer of any manifest.
   */
  public static final String DEVICE = "application/vnd.lazypull.layer-device.v1";

  public static final String ANNOTATION_LAYER = "dev.lazypull.layer";
  public static final String ANNOTATION_DEVICE = "dev.lazypull.device";
  public static final String ANNOTATION_DEVICE_SIZE = "dev.lazypull.device.size";
  public static final String ANNOTATION_DEVICE_MAP = "dev.lazypull.device-map";
  public static final String ANNOTATION_DEVICE_MAP_SIZE = "dev.lazypull.device-map.size";
  public static final String ANNOTATION_SPAN_SIZE = "dev.lazypull.index.span-size";
  public static final String ANNOTATION_ENTRY_SIZE = "dev.lazypull.index.entry-size";
  public static final String ANNOTATION_SUBJECT = "dev.lazypull.index.subject";

  /** Device maps are 16 bytes per file: 256 MiB is 16 M files in one layer. */
  public static final long MAX_DEVICE_MAP_BYTES = 256L << 20;

  /**
   * Zinfos are 32 KiB per checkpoint: 1 GiB is 32 Ki checkpoints, 128 GiB of tar at a 4 MiB span.
   */
  public static final long MAX_ZINFO_BYTES = 1L << 30;

  public static final long MAX_SPANS_BYTES = 64L << 20;

  static final byte[] EMPTY = "{}".getBytes(StandardCharsets.US_ASCII);
  static final Descriptor EMPTY_CONFIG =
      new Descriptor(MediaTypes.OCI_EMPTY, Digest.of(EMPTY), EMPTY.length);

  private IndexArtifact() {}

  /** One device's parts. {@code zinfo} and {@code spans} are null for an uncompressed tar layer. */
  public record Device(
      Digest layer,
      Digest device,
      long deviceSize,
      Descriptor zinfo,
      Descriptor spans,
      Descriptor map,
      Descriptor table) {
    /** The device as a data blob of the served image: self-describing through its map's digest. */
    public Descriptor descriptor() {
      Map<String, String> ann = new TreeMap<>();
      ann.put(ANNOTATION_DEVICE_MAP, map.digest().toString());
      ann.put(ANNOTATION_DEVICE_MAP_SIZE, Long.toString(map.size()));
      ann.put(LazyManifests.ANNOTATION_CHUNK_DIGESTS, table.digest().toString());
      return new Descriptor(DEVICE, device, deviceSize, ann, null);
    }
  }

  /**
   * A parsed index: its own digest, the image it indexes, the bootstrap and the devices in device
   * order.
   */
  public record Parsed(
      Digest digest,
      Manifest manifest,
      Descriptor subject,
      Descriptor bootstrap,
      List<Device> devices) {
    /** The image to serve: the bootstrap and the virtual devices with their digest tables. */
    public LazyImage image(String reference) {
      List<Descriptor> blobs = new ArrayList<>();
      List<Descriptor> tables = new ArrayList<>();
      for (Device d : devices) {
        blobs.add(d.descriptor());
        tables.add(d.table());
      }
      return new LazyImage(reference, digest, manifest, bootstrap, blobs, tables);
    }
  }

  /** True for the descriptor of a virtual device ({@link #DEVICE}). */
  public static boolean isDevice(Descriptor d) {
    return DEVICE.equals(d.mediaType());
  }

  /** The device map named by a virtual device's descriptor. */
  public static Descriptor mapOf(Descriptor device) throws InvalidIndexException {
    String digest = device.annotation(ANNOTATION_DEVICE_MAP);
    String size = device.annotation(ANNOTATION_DEVICE_MAP_SIZE);
    try {
      long n = Long.parseLong(size);
      if (n <= 0 || n > MAX_DEVICE_MAP_BYTES) {
        throw new InvalidIndexException("device " + device.digest() + ": device map size " + n);
      }
      return new Descriptor(DEVICE_MAP, Digest.parse(digest), n);
    } catch (IllegalArgumentException | NullPointerException e) {
      throw new InvalidIndexException(
          "device "
              + device.digest()
              + " does not name its device map ("
              + ANNOTATION_DEVICE_MAP
              + " '"
              + digest
              + "', size '"
              + size
              + "')");
    }
  }

  /** The tag an index is found by in a local store: {@code sha256-<hex>.lazypull-index}. */
  public static String localTag(Digest subject) {
    return "sha256-" + subject.hex() + ".lazypull-index";
  }

  // ---- writing
  // ------------------------------------------------------------------------------------------

  /**
   * The artifact manifest's exact bytes (sorted keys, no whitespace: the same index, the same
   * digest).
   */
  public static byte[] manifest(
      Descriptor subject,
      Descriptor bootstrap,
      List<Device> devices,
      long spanSize,
      int chunkSize,
      int entrySize) {
    ObjectNode m = Json.MAPPER.createObjectNode();
    m.put("schemaVersion", 2);
    m.put("mediaType", MediaTypes.OCI_MANIFEST);
    m.put("artifactType", ARTIFACT_TYPE);
    m.set("config", Json.MAPPER.valueToTree(EMPTY_CONFIG));
    ArrayNode layers = m.putArray("layers");
    layers.add(
        Json.MAPPER.valueToTree(
            new Descriptor(MediaTypes.EROFS_BOOTSTRAP, bootstrap.digest(), bootstrap.size())));
    for (Device d : devices) {
      Map<String, String> layer = Map.of(ANNOTATION_LAYER, d.layer().toString());
      if (d.zinfo() != null) {
        layers.add(
            Json.MAPPER.valueToTree(
                new Descriptor(ZINFO, d.zinfo().digest(), d.zinfo().size(), layer, null)));
        layers.add(
            Json.MAPPER.valueToTree(
                new Descriptor(SPANS, d.spans().digest(), d.spans().size(), layer, null)));
      }
      layers.add(
          Json.MAPPER.valueToTree(
              new Descriptor(
                  DEVICE_MAP,
                  d.map().digest(),
                  d.map().size(),
                  Map.of(
                      ANNOTATION_LAYER,
                      d.layer().toString(),
                      ANNOTATION_DEVICE,
                      d.device().toString(),
                      ANNOTATION_DEVICE_SIZE,
                      Long.toString(d.deviceSize())),
                  null)));
      layers.add(
          Json.MAPPER.valueToTree(
              new Descriptor(
                  MediaTypes.CHUNK_DIGESTS,
                  d.table().digest(),
                  d.table().size(),
                  Map.of(LazyManifests.ANNOTATION_CHUNK_DIGESTS_BLOB, d.device().toString()),
                  null)));
    }
    m.set(
        "subject",
        Json.MAPPER.valueToTree(
            new Descriptor(subject.mediaType(), subject.digest(), subject.size())));
    ObjectNode ann = m.putObject("annotations");
    ann.put(ANNOTATION_SUBJECT, subject.digest().toString());
    ann.put(LazyManifests.ANNOTATION_CHUNK_SIZE, Integer.toString(chunkSize));
    ann.put(ANNOTATION_ENTRY_SIZE, Integer.toString(entrySize));
    ann.put(ANNOTATION_SPAN_SIZE, Long.toString(spanSize));
    return Json.write(m);
  }

  // ---- reading
  // ------------------------------------------------------------------------------------------

  /**
   * Parses and checks an index manifest against the image it must index: artifact type, subject,
   * the layer sequence (bootstrap; then per device [zinfo, spans,] device map, digest table, each
   * naming the same layer and device), sizes within limits, and every device's layer one of the
   * image's layers.
   */
  public static Parsed parse(
      byte[] bytes, Descriptor image, List<Descriptor> imageLayers, String what)
      throws IOException {
    JsonNode root;
    if (bytes.length > Json.MAX_DOCUMENT_BYTES) {
      throw new InvalidIndexException(what + ": " + bytes.length + " bytes");
    }
    try {
      root = Json.MAPPER.readTree(bytes);
    } catch (IOException e) {
      throw new InvalidIndexException(what + ": malformed JSON");
    }
    if (root == null
        || !root.isObject()
        || !ARTIFACT_TYPE.equals(root.path("artifactType").asText(null))) {
      throw new InvalidIndexException(
          what + ": not a lazypull index (artifactType must be " + ARTIFACT_TYPE + ")");
    }
    Manifest m = Json.parse(bytes, Manifest.class, what);
    Descriptor subject;
    try {
      subject = Json.MAPPER.treeToValue(root.path("subject"), Descriptor.class);
    } catch (IOException | IllegalArgumentException e) {
      throw new InvalidIndexException(what + ": no valid subject");
    }
    if (subject == null || !subject.digest().equals(image.digest())) {
      throw new InvalidIndexException(
          what
              + ": indexes "
              + (subject == null ? "nothing" : subject.digest())
              + ", not the image "
              + image.digest());
    }
    List<Descriptor> layers = m.layers();
    if (layers.isEmpty() || !MediaTypes.EROFS_BOOTSTRAP.equals(layers.get(0).mediaType())) {
      throw new InvalidIndexException(
          what + ": layer 0 must be the bootstrap (" + MediaTypes.EROFS_BOOTSTRAP + ")");
    }
    Descriptor boot = layers.get(0);
    if (boot.size() < 4096 || boot.size() > LazyImage.MAX_BLOB_SIZE) {
      throw new InvalidIndexException(what + ": bootstrap of " + boot.size() + " bytes");
    }
    List<Digest> known = imageLayers.stream().map(Descriptor::digest).toList();
    List<Device> devices = new ArrayList<>();
    int i = 1;
    while (i < layers.size()) {
      Descriptor zinfo = null;
      Descriptor spans = null;
      if (ZINFO.equals(layers.get(i).mediaType())) {
        if (i + 1 >= layers.size() || !SPANS.equals(layers.get(i + 1).mediaType())) {
          throw new InvalidIndexException(
              what + ": layer " + i + " (zinfo) is not followed by its span table");
        }
        zinfo = layers.get(i++);
        spans = layers.get(i++);
        limit(what, zinfo, MAX_ZINFO_BYTES);
        limit(what, spans, MAX_SPANS_BYTES);
      }
      if (i + 1 >= layers.size()
          || !DEVICE_MAP.equals(layers.get(i).mediaType())
          || !MediaTypes.CHUNK_DIGESTS.equals(layers.get(i + 1).mediaType())) {
        throw new InvalidIndexException(
            what
                + ": layer "
                + i
                + " is "
                + layers.get(i).mediaType()
                + "; expected "
                + (zinfo == null ? ZINFO + " or " : "")
                + DEVICE_MAP
                + " then "
                + MediaTypes.CHUNK_DIGESTS);
      }
      Descriptor map = layers.get(i++);
      Descriptor table = layers.get(i++);
      limit(what, map, MAX_DEVICE_MAP_BYTES);
      limit(what, table, ChunkTables.MAX_TABLE_BYTES);
      Digest layer;
      Digest device;
      long size;
      try {
        layer = Digest.parse(map.annotation(ANNOTATION_LAYER));
        device = Digest.parse(map.annotation(ANNOTATION_DEVICE));
        size = Long.parseLong(map.annotation(ANNOTATION_DEVICE_SIZE));
      } catch (RuntimeException e) {
        throw new InvalidIndexException(
            what
                + ": device map "
                + map.digest()
                + " lacks valid "
                + ANNOTATION_LAYER
                + ", "
                + ANNOTATION_DEVICE
                + " and "
                + ANNOTATION_DEVICE_SIZE
                + " annotations");
      }
      if (size <= 0 || size % 4096 != 0 || size > LazyImage.MAX_BLOB_SIZE) {
        throw new InvalidIndexException(what + ": device " + device + " of " + size + " bytes");
      }
      if (!known.contains(layer)) {
        throw new InvalidIndexException(
            what
                + ": device map "
                + map.digest()
                + " is for layer "
                + layer
                + ", which the image does not have");
      }
      for (Descriptor d : zinfo == null ? List.of(table) : List.of(zinfo, spans, table)) {
        String named =
            d.mediaType().equals(MediaTypes.CHUNK_DIGESTS)
                ? d.annotation(LazyManifests.ANNOTATION_CHUNK_DIGESTS_BLOB)
                : d.annotation(ANNOTATION_LAYER);
        String want =
            d.mediaType().equals(MediaTypes.CHUNK_DIGESTS) ? device.toString() : layer.toString();
        if (!want.equals(named)) {
          throw new InvalidIndexException(
              what
                  + ": "
                  + d.mediaType()
                  + " "
                  + d.digest()
                  + " names "
                  + named
                  + ", expected "
                  + want);
        }
      }
      devices.add(new Device(layer, device, size, zinfo, spans, map, table));
    }
    return new Parsed(Digest.of(bytes), m, subject, boot, List.copyOf(devices));
  }

  private static void limit(String what, Descriptor d, long max) throws InvalidIndexException {
    if (d.size() <= 0 || d.size() > max) {
      throw new InvalidIndexException(
          what
              + ": "
              + d.mediaType()
              + " "
              + d.digest()
              + " of "
              + d.size()
              + " bytes (limit "
              + max
              + ")");
    }
  }
}

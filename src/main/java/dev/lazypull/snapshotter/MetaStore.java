package dev.lazypull.snapshotter;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.image.Json;
import dev.lazypull.sys.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * The snapshotter's metadata, one JSON document replaced whole on every change ({@link
 * AtomicFiles}): a crash leaves the previous state or the new one, never a mix. Directories are
 * made before a snapshot is recorded and removed after it is forgotten, so a crash leaves at worst
 * a directory no record names, which {@code Cleanup} removes. Not thread-safe: {@link Snapshotter}
 * serializes access.
 */
final class MetaStore {
  /**
   * One snapshot: its numeric id (its directory's name), what Stat says, its usage when committed,
   * how lazy.
   */
  record Entry(long id, SnapshotInfo info, SnapshotUsage usage, LazyLayer lazy) {
    Entry withInfo(SnapshotInfo i) {
      return new Entry(id, i, usage, lazy);
    }

    Entry withLazy(LazyLayer l) {
      return new Entry(id, info, usage, l);
    }
  }

  private static final int VERSION = 1;

  private final Path file;
  private final TreeMap<String, Entry> byName = new TreeMap<>();
  private long nextId = 1;

  private MetaStore(Path file) {
    this.file = file;
  }

  static MetaStore load(Path file) throws IOException {
    MetaStore s = new MetaStore(file);
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      return s;
    }
    JsonNode root;
    try {
      root = Json.MAPPER.readTree(bytes);
    } catch (IOException e) {
      throw new IOException(file + ": malformed snapshot metadata: " + e.getMessage(), e);
    }
    if (root == null || root.path("version").asInt() != VERSION) {
      throw new IOException(
          file + ": snapshot metadata of an unknown version (want " + VERSION + ")");
    }
    s.nextId = root.path("nextId").asLong(1);
    for (JsonNode n : root.path("snapshots")) {
      Map<String, String> labels = new TreeMap<>();
      for (Iterator<Map.Entry<String, JsonNode>> it = n.path("labels").fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        labels.put(e.getKey(), e.getValue().asText());
      }
      SnapshotInfo info =
          new SnapshotInfo(
              n.path("name").asText(),
              n.path("parent").asText(""),
              Kind.valueOf(n.path("kind").asText()),
              labels,
              Instant.parse(n.path("created").asText()),
              Instant.parse(n.path("updated").asText()));
      LazyLayer lazy =
          n.hasNonNull("lazy") ? Json.MAPPER.treeToValue(n.get("lazy"), LazyLayer.class) : null;
      Entry e =
          new Entry(
              n.path("id").asLong(),
              info,
              new SnapshotUsage(n.path("size").asLong(0), n.path("inodes").asLong(0)),
              lazy);
      s.byName.put(info.name(), e);
      s.nextId = Math.max(s.nextId, e.id() + 1);
    }
    return s;
  }

  Entry get(String name) {
    return byName.get(name);
  }

  Collection<Entry> all() {
    return byName.values();
  }

  long allocateId() {
    return nextId++;
  }

  void put(Entry e) {
    byName.put(e.info().name(), e);
  }

  void remove(String name) {
    byName.remove(name);
  }

  /** Whether some snapshot names {@code name} as its parent. */
  boolean hasChildren(String name) {
    for (Entry e : byName.values()) {
      if (e.info().parent().equals(name)) {
        return true;
      }
    }
    return false;
  }

  /** Writes the whole state; on failure the file still holds the previous state. */
  void save() throws IOException {
    ObjectNode root = Json.MAPPER.createObjectNode().put("version", VERSION).put("nextId", nextId);
    ArrayNode list = root.putArray("snapshots");
    for (Entry e : byName.values()) {
      SnapshotInfo i = e.info();
      ObjectNode n =
          list.addObject()
              .put("id", e.id())
              .put("name", i.name())
              .put("parent", i.parent())
              .put("kind", i.kind().name())
              .put("created", i.created().toString())
              .put("updated", i.updated().toString())
              .put("size", e.usage().size())
              .put("inodes", e.usage().inodes());
      ObjectNode labels = n.putObject("labels");
      new LinkedHashMap<>(i.labels()).forEach(labels::put);
      if (e.lazy() != null) {
        n.set("lazy", Json.MAPPER.valueToTree(e.lazy()));
      }
    }
    AtomicFiles.write(file, Json.MAPPER.writeValueAsBytes(root));
  }
}

package dev.lazypull.snapshotter;

import java.time.Instant;
import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/** What {@code Stat} and {@code Walk} tell of a snapshot (containerd's {@code snapshots.Info}). */
public record SnapshotInfo(
    String name,
    String parent,
    Kind kind,
    Map<String, String> labels,
    Instant created,
    Instant updated) {
  public SnapshotInfo {
    parent = parent == null ? "" : parent;
    labels = labels == null ? Map.of() : Collections.unmodifiableMap(new TreeMap<>(labels));
  }

  SnapshotInfo withLabels(Map<String, String> l, Instant when) {
    return new SnapshotInfo(name, parent, kind, l, created, when);
  }
}

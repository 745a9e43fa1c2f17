package dev.lazypull.snapshotter;

/** Disk usage of a snapshot: bytes allocated and inodes (containerd's {@code snapshots.Usage}). */
public record SnapshotUsage(long size, long inodes) {
  public static final SnapshotUsage NONE = new SnapshotUsage(0, 0);
}

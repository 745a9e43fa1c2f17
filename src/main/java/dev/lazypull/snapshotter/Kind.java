package dev.lazypull.snapshotter;

/** A snapshot's kind, as containerd names them (its filters compare these names). */
public enum Kind {
  VIEW("View"),
  ACTIVE("Active"),
  COMMITTED("Committed");

  private final String text;

  Kind(String text) {
    this.text = text;
  }

  /** containerd's {@code snapshots.Kind.String()}. */
  public String text() {
    return text;
  }
}

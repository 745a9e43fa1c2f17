package dev.lazypull.snapshotter;

/**
 * A snapshot operation refused, classified as containerd's errdefs classify errors (each becomes
 * the gRPC status containerd maps back to the same class: {@code errdefs.FromGRPC}).
 */
public final class SnapshotException extends Exception {
  private static final long serialVersionUID = 1L;

  /** containerd's error classes this snapshotter answers with. */
  public enum Code {
    NOT_FOUND,
    ALREADY_EXISTS,
    FAILED_PRECONDITION,
    INVALID_ARGUMENT,
    /**
     * Something this snapshotter depends on (the lazypull daemon) cannot be reached now: retrying
     * may help.
     */
    UNAVAILABLE,
    INTERNAL
  }

  private final Code code;

  public SnapshotException(Code code, String message) {
    super(message);
    this.code = code;
  }

  public SnapshotException(Code code, String message, Throwable cause) {
    super(message, cause);
    this.code = code;
  }

  public Code code() {
    return code;
  }

  static SnapshotException notFound(String message) {
    return new SnapshotException(Code.NOT_FOUND, message + ": not found");
  }

  static SnapshotException alreadyExists(String message) {
    return new SnapshotException(Code.ALREADY_EXISTS, message + ": already exists");
  }

  static SnapshotException failedPrecondition(String message) {
    return new SnapshotException(Code.FAILED_PRECONDITION, message + ": failed precondition");
  }

  static SnapshotException invalidArgument(String message) {
    return new SnapshotException(Code.INVALID_ARGUMENT, message + ": invalid argument");
  }
}

package dev.lazypull.frontend;

/**
 * The daemon cannot start; the message says why and what to do, in words an operator can act on.
 */
public final class SetupException extends Exception {
  private static final long serialVersionUID = 1L;

  public SetupException(String message) {
    super(message);
  }

  public SetupException(String message, Throwable cause) {
    super(message, cause);
  }
}

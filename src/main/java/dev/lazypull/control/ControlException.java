package dev.lazypull.control;

import java.io.IOException;

/** The daemon refused a control request, or could not be reached; the message is for the user. */
public final class ControlException extends IOException {
  private static final long serialVersionUID = 1L;

  public ControlException(String message) {
    super(message);
  }

  public ControlException(String message, Throwable cause) {
    super(message, cause);
  }
}

package dev.lazypull.registry;

import java.io.IOException;

/**
 * A registry said no, or sent something we refuse. The message always names the registry, the
 * repository and what was asked for (digest or tag), and never a credential or a token.
 *
 * @see #status() the HTTP status, or 0 when the failure is not an HTTP status (bad body, digest
 *     mismatch)
 */
public class RegistryException extends IOException {
  private static final long serialVersionUID = 1L;
  private final int status;
  private final String errorCode;

  public RegistryException(String message, int status, String errorCode) {
    super(message);
    this.status = status;
    this.errorCode = errorCode;
  }

  public RegistryException(String message) {
    this(message, 0, null);
  }

  public RegistryException(String message, Throwable cause) {
    super(message, cause);
    this.status = 0;
    this.errorCode = null;
  }

  public int status() {
    return status;
  }

  /** The first distribution error code in the body ({@code BLOB_UNKNOWN}, …), or null. */
  public String errorCode() {
    return errorCode;
  }

  public boolean isNotFound() {
    return status == 404;
  }
}

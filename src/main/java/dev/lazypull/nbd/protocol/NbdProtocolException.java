package dev.lazypull.nbd.protocol;

/**
 * A peer broke the NBD protocol: a bad magic, a malformed option payload, a string that is not
 * allowed.
 */
public final class NbdProtocolException extends Exception {
  private static final long serialVersionUID = 1L;

  public NbdProtocolException(String message) {
    super(message);
  }
}

package dev.lazypull.registry;

import java.io.IOException;
import okhttp3.Response;
import okio.BufferedSource;

/** Reads small response bodies (manifests, tokens, errors) into memory with a hard size cap. */
final class Bodies {
  private Bodies() {}

  /**
   * The whole body, or a {@link RegistryException} naming {@code what} if it is (or claims to be)
   * larger than {@code max}, or shorter than its Content-Length.
   */
  static byte[] read(Response r, long max, String what) throws IOException {
    long declared = r.body().contentLength();
    if (declared > max) {
      throw new RegistryException(
          what + ": response of " + declared + " bytes exceeds the " + max + "-byte limit");
    }
    BufferedSource src = r.body().source();
    if (src.request(max + 1)) {
      throw new RegistryException(what + ": response exceeds the " + max + "-byte limit");
    }
    byte[] bytes = src.getBuffer().readByteArray();
    if (declared >= 0 && bytes.length != declared) {
      throw new RegistryException(
          what + ": body has " + bytes.length + " bytes, Content-Length said " + declared);
    }
    return bytes;
  }

  /** Up to {@code max} bytes of an error body; never fails. */
  static byte[] errorBody(Response r) {
    try {
      BufferedSource src = r.body().source();
      src.request(ErrorBody.MAX_BYTES);
      return src.getBuffer().readByteArray(Math.min(src.getBuffer().size(), ErrorBody.MAX_BYTES));
    } catch (IOException | RuntimeException e) {
      return new byte[0];
    }
  }
}

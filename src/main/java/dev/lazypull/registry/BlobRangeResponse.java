package dev.lazypull.registry;

import java.io.IOException;
import java.nio.channels.ReadableByteChannel;
import java.util.Objects;
import okhttp3.Response;

/**
 * Checks a blob GET's response against the range asked for and, if it is acceptable, exposes
 * exactly those bytes. Every check happens before a byte is handed out:
 *
 * <ul>
 *   <li>206: {@code Content-Range} must be exactly {@code offset-last/size} (the size may be {@code
 *       *}) and a {@code Content-Length}, if sent, the range's length; the body must end where the
 *       range does.
 *   <li>200: the registry ignored {@code Range} and sends the whole blob: a {@code Content-Length},
 *       if sent, must be the blob's size, and the first {@code offset} bytes are skipped — only if
 *       {@code offset <= maxSkip}.
 * </ul>
 */
final class BlobRangeResponse {
  private BlobRangeResponse() {}

  /**
   * The range's bytes, or null when the status is neither 206 nor 200 (the caller reports it). On
   * an exception the caller still owns (and closes) the response.
   *
   * @param fromMirror whether a mirror (not the registry itself) sent the response
   * @param onRangeIgnored called before skipping forward in a 200
   */
  static ReadableByteChannel open(
      Response r,
      long blobSize,
      long offset,
      long length,
      long maxSkip,
      String where,
      boolean fromMirror,
      Runnable onRangeIgnored)
      throws IOException {
    long last = offset + length - 1;
    long declared = r.body().contentLength();
    if (r.code() == 206) {
      ContentRange cr = ContentRange.parse(r.header("Content-Range"));
      if (cr == null
          || cr.first() != offset
          || cr.last() != last
          || (cr.total() >= 0 && cr.total() != blobSize)) {
        throw new RegistryException(
            where
                + ": asked for bytes "
                + offset
                + "-"
                + last
                + "/"
                + blobSize
                + ", got Content-Range '"
                + Objects.toString(ErrorBody.printable(r.header("Content-Range")), "(none)")
                + "'",
            206,
            null);
      }
      if (declared >= 0 && declared != length) {
        throw new RegistryException(
            where + ": 206 for " + length + " bytes has Content-Length " + declared, 206, null);
      }
      return new ResponseChannel(r, length, true, where, fromMirror);
    }
    if (r.code() == 200) {
      if (declared >= 0 && declared != blobSize) {
        throw new RegistryException(
            where + ": full response of " + declared + " bytes for a blob of " + blobSize,
            200,
            null);
      }
      if (offset > maxSkip) {
        throw new RegistryException(
            where
                + ": the registry ignored the Range header; reaching offset "
                + offset
                + " would discard more than max_skip ("
                + maxSkip
                + " bytes)",
            200,
            null);
      }
      onRangeIgnored.run();
      r.body().source().skip(offset);
      return new ResponseChannel(r, length, false, where, fromMirror);
    }
    return null;
  }
}

package dev.lazypull.registry;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.blob.BoundedChannel;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import okhttp3.Response;
import okio.BufferedSource;

/**
 * Exactly {@code length} bytes of a response body, read straight from OkHttp's buffered source (a
 * {@link ReadableByteChannel}) into the caller's buffer. A body that ends early is an error (from
 * {@link BoundedChannel}); with {@code mustEnd}, so is one that goes on past {@code length}.
 * Closing it closes the response, returning the connection to the pool when the body was consumed.
 */
final class ResponseChannel implements ReadableByteChannel, BlobSource.Served {
  private final Response response;
  private final BufferedSource source;
  private final BoundedChannel bounded;
  private final boolean mustEnd;
  private final String what;
  private boolean endChecked;
  private final boolean fromMirror;

  ResponseChannel(Response response, long length, boolean mustEnd, String what) {
    this(response, length, mustEnd, what, false);
  }

  /**
   * @param fromMirror whether a mirror (not the registry itself) is sending these bytes
   */
  ResponseChannel(
      Response response, long length, boolean mustEnd, String what, boolean fromMirror) {
    this.response = response;
    this.source = response.body().source();
    this.bounded = new BoundedChannel(source, length, what);
    this.mustEnd = mustEnd;
    this.what = what;
    this.fromMirror = fromMirror;
  }

  @Override
  public boolean fromMirror() {
    return fromMirror;
  }

  @Override
  public String servedBy() {
    return what;
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    int n = bounded.read(dst);
    if (bounded.remaining() == 0 && mustEnd && !endChecked) {
      endChecked = true;
      if (!source.exhausted()) {
        throw new RegistryException(what + ": body is longer than the bytes promised");
      }
    }
    return n;
  }

  @Override
  public boolean isOpen() {
    return bounded.isOpen();
  }

  @Override
  public void close() {
    response.close();
  }
}

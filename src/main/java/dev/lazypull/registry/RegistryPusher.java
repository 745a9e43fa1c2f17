package dev.lazypull.registry;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.List;
import java.util.logging.Logger;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.RequestBody;
import okhttp3.Response;
import okio.BufferedSink;

/**
 * {@link ImagePusher} over the distribution API, always against the registry's origin (mirrors are
 * for pulls). Uploads: {@code POST /v2/<name>/blobs/uploads/} (with {@code mount=&from=} when a
 * source repository is known), then either one {@code PUT <location>&digest=} with the whole body,
 * or {@code PATCH <location>} chunks with {@code Content-Range} — following each response's new
 * {@code Location} — closed by an empty {@code PUT}. A monolithic PUT refused as too large (413, or
 * 400 {@code SIZE_INVALID}) falls back to chunks. Transient failures (connection errors, 5xx, 429)
 * restart the whole upload, a bounded number of times.
 */
final class RegistryPusher implements ImagePusher {
  private static final Logger LOG = Logger.getLogger(RegistryPusher.class.getName());
  private static final MediaType OCTET_STREAM = MediaType.get("application/octet-stream");

  private final RegistryClient client;
  private final RegistryConfig config;

  RegistryPusher(RegistryClient client) {
    this.client = client;
    this.config = client.config();
  }

  private Endpoint origin(Repository repo) {
    return client.endpoints().origin(repo.registry());
  }

  @Override
  public boolean hasBlob(Repository repo, Digest digest) throws IOException {
    Endpoint ep = origin(repo);
    String what = "blob " + digest;
    RegistryRequest req =
        RegistryRequest.head(
            ep.api(repo.name(), "blobs", digest.toString()), Scope.push(repo.name()));
    try (Response r = execute(ep, repo, what, req)) {
      if (r.code() == 200) {
        return true;
      }
      if (r.code() == 404) {
        return false;
      }
      throw client.httpError(ep, repo, what, r);
    }
  }

  @Override
  public PushResult pushBlob(
      Repository repo, Descriptor blob, BlobContent content, String mountFrom) throws IOException {
    if (content.size() != blob.size()) {
      throw new IOException(
          "blob "
              + blob.digest()
              + ": content has "
              + content.size()
              + " bytes, the descriptor says "
              + blob.size());
    }
    if (hasBlob(repo, blob.digest())) {
      return PushResult.EXISTED;
    }
    String from = mountFrom != null && !mountFrom.equals(repo.name()) ? mountFrom : null;
    for (int attempt = 0; ; attempt++) {
      try {
        return uploadOnce(repo, blob, content, from);
      } catch (IOException e) {
        if (!transient_(e) || attempt >= config.retry().retries()) {
          throw e;
        }
        Duration d = config.retry().backoff(attempt);
        LOG.warning(
            "pushing "
                + blob.digest().shortHex()
                + " to "
                + repo
                + " failed ("
                + e.getMessage()
                + "); starting the upload again in "
                + d.toMillis()
                + " ms");
        try {
          Thread.sleep(d.toMillis());
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          throw new InterruptedIOException("interrupted");
        }
      }
    }
  }

  private static boolean transient_(IOException e) {
    if (e instanceof RegistryException re) {
      return re.status() != 0 && RetryPolicy.retryableStatus(re.status());
    }
    return !(e instanceof InterruptedIOException) || e instanceof SocketTimeoutException;
  }

  private PushResult uploadOnce(
      Repository repo, Descriptor blob, BlobContent content, String mountFrom) throws IOException {
    Endpoint ep = origin(repo);
    Upload up = start(ep, repo, blob, mountFrom);
    if (up.mounted) {
      return PushResult.MOUNTED;
    }
    if (blob.size() < config.chunkedUploadThreshold()) {
      try {
        finish(ep, repo, blob, up.location, content, 0, blob.size());
        return PushResult.UPLOADED;
      } catch (RegistryException e) {
        boolean tooLarge =
            e.status() == 413 || (e.status() == 400 && "SIZE_INVALID".equals(e.errorCode()));
        if (!tooLarge) {
          throw e;
        }
        LOG.info(
            ep
                + " refused a monolithic upload of "
                + blob.size()
                + " bytes ("
                + e.status()
                + "); uploading in chunks");
        up = start(ep, repo, blob, null);
      }
    }
    chunked(ep, repo, blob, up, content);
    return PushResult.UPLOADED;
  }

  private record Upload(boolean mounted, HttpUrl location, long minChunk) {}

  /** POST to open an upload session, or mount the blob from another repository. */
  private Upload start(Endpoint ep, Repository repo, Descriptor blob, String mountFrom)
      throws IOException {
    HttpUrl.Builder u = ep.api(repo.name(), "blobs", "uploads", "").newBuilder();
    Scope scope = Scope.push(repo.name());
    if (mountFrom != null) {
      u.addQueryParameter("mount", blob.digest().toString()).addQueryParameter("from", mountFrom);
      scope = scope.plus(Scope.pull(mountFrom));
    }
    String what =
        "blob " + blob.digest() + (mountFrom != null ? " (mount from " + mountFrom + ")" : "");
    RegistryRequest req =
        RegistryRequest.send("POST", u.build(), RequestBody.create(new byte[0]), scope, true);
    try (Response r = execute(ep, repo, what, req)) {
      if (r.code() == 201 && mountFrom != null) {
        return new Upload(true, null, 0);
      }
      if (r.code() != 202) {
        throw client.httpError(ep, repo, what, r);
      }
      return new Upload(
          false, location(ep, repo, what, r), parseLong(r.header("OCI-Chunk-Min-Length")));
    }
  }

  /**
   * PUT {@code [offset, offset+length)} of the content (possibly nothing) and the digest: closes
   * the upload.
   */
  private void finish(
      Endpoint ep,
      Repository repo,
      Descriptor blob,
      HttpUrl location,
      BlobContent content,
      long offset,
      long length)
      throws IOException {
    String what = "blob " + blob.digest();
    HttpUrl url =
        location.newBuilder().addQueryParameter("digest", blob.digest().toString()).build();
    RegistryRequest req =
        RegistryRequest.send(
            "PUT",
            url,
            new ContentBody(content, offset, length, what),
            Scope.push(repo.name()),
            false);
    try (Response r = execute(ep, repo, what, req)) {
      if (r.code() != 201) {
        throw client.httpError(ep, repo, what, r);
      }
      checkDigest(ep, repo, what, r, blob.digest());
    }
  }

  private void chunked(
      Endpoint ep, Repository repo, Descriptor blob, Upload up, BlobContent content)
      throws IOException {
    String what = "blob " + blob.digest();
    long chunk = Math.max(config.uploadChunkSize(), up.minChunk);
    HttpUrl location = up.location;
    long pos = 0;
    while (pos < blob.size()) {
      long n = Math.min(chunk, blob.size() - pos);
      long last = pos + n - 1;
      RegistryRequest req =
          RegistryRequest.send(
                  "PATCH",
                  location,
                  new ContentBody(content, pos, n, what),
                  Scope.push(repo.name()),
                  false)
              .header("Content-Range", pos + "-" + last);
      try (Response r = execute(ep, repo, what + " chunk " + pos + "-" + last, req)) {
        if (r.code() != 202) {
          throw client.httpError(ep, repo, what + " chunk " + pos + "-" + last, r);
        }
        String range = r.header("Range");
        if (range != null
            && !range.trim().equals("0-" + last)
            && !range.trim().equals("bytes=0-" + last)) {
          throw new RegistryException(
              RegistryClient.where(ep, repo, what)
                  + ": after the chunk ending at "
                  + last
                  + " the registry reports Range '"
                  + range
                  + "'");
        }
        location = location(ep, repo, what, r);
      }
      pos += n;
    }
    finish(ep, repo, blob, location, content, 0, 0);
  }

  @Override
  public Digest pushManifest(Repository repo, byte[] manifest, String mediaType, List<String> tags)
      throws IOException {
    Endpoint ep = origin(repo);
    Digest digest = Digest.of(manifest);
    List<String> refs = tags.isEmpty() ? List.of(digest.toString()) : tags;
    for (String ref : refs) {
      String what = "manifest " + ref;
      RegistryRequest req =
          RegistryRequest.send(
              "PUT",
              ep.api(repo.name(), "manifests", ref),
              RequestBody.create(manifest, MediaType.get(mediaType)),
              Scope.push(repo.name()),
              true);
      try (Response r = execute(ep, repo, what, req)) {
        if (r.code() != 201 && r.code() != 200) {
          throw client.httpError(ep, repo, what, r);
        }
        checkDigest(ep, repo, what, r, digest);
      }
    }
    return digest;
  }

  private Response execute(Endpoint ep, Repository repo, String what, RegistryRequest req)
      throws IOException {
    try {
      return client.transport().execute(ep, req, config.retry());
    } catch (IOException e) {
      throw client.describe(ep, repo, what, e);
    }
  }

  private static HttpUrl location(Endpoint ep, Repository repo, String what, Response r)
      throws RegistryException {
    String loc = r.header("Location");
    HttpUrl url = loc == null ? null : r.request().url().resolve(loc);
    if (url == null) {
      throw new RegistryException(
          RegistryClient.where(ep, repo, what)
              + ": HTTP "
              + r.code()
              + " without a usable Location");
    }
    return url;
  }

  private static void checkDigest(
      Endpoint ep, Repository repo, String what, Response r, Digest expected)
      throws RegistryException {
    String claimed = r.header("Docker-Content-Digest");
    if (claimed != null && claimed.startsWith("sha256:") && !claimed.equals(expected.toString())) {
      throw new RegistryException(
          RegistryClient.where(ep, repo, what)
              + ": the registry stored digest "
              + claimed
              + ", expected "
              + expected);
    }
  }

  private static long parseLong(String s) {
    try {
      return s == null ? 0 : Math.max(0, Long.parseLong(s.trim()));
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  /**
   * Streams {@code [offset, offset+length)} of the content as a request body; a short source is an
   * error.
   */
  private static final class ContentBody extends RequestBody {
    private final BlobContent content;
    private final long offset;
    private final long length;
    private final String what;

    ContentBody(BlobContent content, long offset, long length, String what) {
      this.content = content;
      this.offset = offset;
      this.length = length;
      this.what = what;
    }

    @Override
    public MediaType contentType() {
      return OCTET_STREAM;
    }

    @Override
    public long contentLength() {
      return length;
    }

    @Override
    public void writeTo(BufferedSink sink) throws IOException {
      if (length == 0) {
        return;
      }
      byte[] buf = new byte[256 << 10];
      long left = length;
      try (InputStream in = content.open(offset)) {
        while (left > 0) {
          int n = in.read(buf, 0, (int) Math.min(buf.length, left));
          if (n < 0) {
            throw new EOFException(what + ": source ended " + left + " bytes early");
          }
          sink.write(buf, 0, n);
          left -= n;
        }
      }
    }
  }
}

package dev.lazypull.registry;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.blob.BlobSource;
import dev.lazypull.blob.ResumingChannel;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.Json;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.image.Sha256Stream;
import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;
import java.util.logging.Logger;
import javax.net.ssl.SSLException;
import okhttp3.Dns;
import okhttp3.HttpUrl;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;

/**
 * The OCI distribution client: manifests, ranged and whole blob reads, and (through {@link
 * #pusher()}) uploads. One instance per process shares one connection pool, one token cache and one
 * redirect cache.
 *
 * <p>Pulls go to the registry's mirrors first, then its origin ({@link Endpoints}); a failing
 * mirror is skipped for a while. Every failure is an {@link IOException} whose message names the
 * registry endpoint, the repository and the manifest or blob; a refusal by the registry or a
 * protocol violation is a {@link RegistryException}.
 *
 * <p>Blob ranges are validated before a byte is handed out: a 206 must carry the exact {@code
 * Content-Range} (and size) asked for; a 200 means the registry ignored {@code Range} and sends the
 * whole blob, whose first {@code offset} bytes are skipped if that is at most {@code max_skip}
 * (warned once per endpoint). Ranges are never requested past the descriptor's size (distribution
 * answers those with a broken 416). A read that fails part-way resumes from where it stopped.
 */
public final class RegistryClient implements Closeable {
  private static final Logger LOG = Logger.getLogger(RegistryClient.class.getName());
  private static final Set<String> MANIFEST_TYPES =
      Set.of(
          MediaTypes.OCI_MANIFEST,
          MediaTypes.OCI_INDEX,
          MediaTypes.DOCKER_MANIFEST,
          MediaTypes.DOCKER_MANIFEST_LIST);

  private final RegistryConfig config;
  private final RegistryTransport transport;
  private final Endpoints endpoints;
  private final Set<String> warnedRangeIgnored = ConcurrentHashMap.newKeySet();
  private final Set<String> warnedMirror = ConcurrentHashMap.newKeySet();

  /** A client using the docker config.json credentials named by the config (or the environment). */
  public static RegistryClient create(RegistryConfig config) throws IOException {
    return new RegistryClient(
        config, DockerConfigCredentials.fromEnvironment(config.dockerConfig()), Sleeper.REAL);
  }

  public RegistryClient(RegistryConfig config, CredentialStore credentials, Sleeper sleeper)
      throws IOException {
    this(config, credentials, sleeper, System::nanoTime);
  }

  /**
   * With its own name resolution: tests reach a local server under a name that is not a loopback
   * name (so neither the loopback convention nor the system's resolver decides what they test).
   */
  public RegistryClient(
      RegistryConfig config, CredentialStore credentials, Sleeper sleeper, Dns dns)
      throws IOException {
    this(config, credentials, sleeper, System::nanoTime, dns);
  }

  /** With a clock for token lifetimes, redirect expiry and mirror cool-downs (tests). */
  RegistryClient(
      RegistryConfig config, CredentialStore credentials, Sleeper sleeper, LongSupplier nanoClock)
      throws IOException {
    this(config, credentials, sleeper, nanoClock, null);
  }

  private RegistryClient(
      RegistryConfig config,
      CredentialStore credentials,
      Sleeper sleeper,
      LongSupplier nanoClock,
      Dns dns)
      throws IOException {
    this.config = config;
    OkHttpClient http = HttpClients.create(config, dns);
    RegistryAuth auth = new RegistryAuth(credentials, nanoClock);
    this.transport =
        new RegistryTransport(
            http,
            auth,
            new RedirectCache(config.redirectTtl().toNanos(), nanoClock),
            sleeper,
            config.requestTimeout());
    auth.setHttp((req, idempotent) -> transport.executePlain(req, idempotent, config.retry()));
    auth.stats = transport.stats;
    this.endpoints =
        new Endpoints(
            config,
            nanoClock,
            url -> {
              // a loopback server answers /v2/ at once; one that says nothing (a plain HTTP server
              // still waiting for the
              // end of a request line after a TLS ClientHello) must not stall the first request for
              // a whole read timeout
              try (Response r =
                  transport.executePlain(
                      new Request.Builder().url(url).get().build(),
                      true,
                      RetryPolicy.none(),
                      config.connectTimeout())) {
                return r.code();
              }
            });
  }

  /**
   * Speaks plain HTTP to {@code registry} (as written in references) from now on, as if it had
   * {@code plain_http = true} in its {@code [[registry.host]]} entry: for an image registered with
   * {@code --plain-http} through the control socket (which only root can reach).
   */
  public void usePlainHttp(String registry) {
    if (endpoints.usePlainHttp(registry) && !config.isPlainHttp(registry)) {
      LOG.info(
          "registry "
              + registry
              + ": plain HTTP (asked for with an image registered with --plain-http)");
    }
  }

  /**
   * Whether {@code registry}'s origin is spoken to in plain HTTP (a loopback registry is probed if
   * unsettled).
   */
  public boolean isPlainHttp(String registry) {
    return endpoints.isPlainHttp(registry);
  }

  /** Request, retry, token and mirror counters (for metrics). */
  public RegistryStats stats() {
    return transport.stats;
  }

  public RegistryConfig config() {
    return config;
  }

  RegistryTransport transport() {
    return transport;
  }

  Endpoints endpoints() {
    return endpoints;
  }

  /** Uploads to registries with this client's connections, credentials and retry policy. */
  public ImagePusher pusher() {
    return new RegistryPusher(this);
  }

  // ---- manifests
  // -----------------------------------------------------------------------------------------

  /**
   * Fetches a manifest or index by tag or digest. With {@code expected} set, the bytes must hash to
   * it; otherwise a {@code Docker-Content-Digest} header, if sent, must match them.
   */
  public RawManifest fetchManifest(Repository repo, String reference, Digest expected)
      throws IOException {
    String what = "manifest " + reference;
    return onPullEndpoints(
        repo,
        what,
        ep -> {
          HttpUrl url = ep.api(repo.name(), "manifests", reference);
          RegistryRequest req =
              RegistryRequest.get(url, Scope.pull(repo.name()))
                  .header("Accept", MediaTypes.MANIFEST_ACCEPT);
          try (Response r = transport.execute(ep, req, policyFor(ep))) {
            if (r.code() != 200) {
              throw httpError(ep, repo, what, r);
            }
            String where = where(ep, repo, what);
            byte[] bytes = Bodies.read(r, Json.MAX_DOCUMENT_BYTES, where);
            Digest actual = Digest.of(bytes);
            if (expected != null && !actual.equals(expected)) {
              throw new RegistryException(
                  where + ": content hashes to " + actual + ", not the digest asked for");
            }
            String claimed = r.header("Docker-Content-Digest");
            if (expected == null
                && claimed != null
                && claimed.startsWith("sha256:")
                && !claimed.equals(actual.toString())) {
              throw new RegistryException(
                  where
                      + ": Docker-Content-Digest says "
                      + claimed
                      + " but the content hashes to "
                      + actual);
            }
            return new RawManifest(
                bytes, mediaType(r.header("Content-Type"), bytes, where), actual);
          }
        });
  }

  /**
   * The OCI 1.1 referrers API ({@code GET /v2/<name>/referrers/<digest>?artifactType=…}) of the
   * origin: the image index listing the manifests whose {@code subject} is {@code subject}, or
   * empty when the registry does not implement the API (404, 400, 405 — distribution 2.8 among
   * them); clients then use the referrers tag schema.
   */
  public Optional<RawManifest> fetchReferrers(Repository repo, Digest subject, String artifactType)
      throws IOException {
    Endpoint ep = endpoints.origin(repo.registry());
    String what = "referrers of " + subject;
    HttpUrl url =
        ep.api(repo.name(), "referrers", subject.toString())
            .newBuilder()
            .addQueryParameter("artifactType", artifactType)
            .build();
    RegistryRequest req =
        RegistryRequest.get(url, Scope.pull(repo.name())).header("Accept", MediaTypes.OCI_INDEX);
    try (Response r = transport.execute(ep, req, policyFor(ep))) {
      if (r.code() == 404 || r.code() == 400 || r.code() == 405) {
        return Optional.empty();
      }
      if (r.code() != 200) {
        throw httpError(ep, repo, what, r);
      }
      byte[] bytes = Bodies.read(r, Json.MAX_DOCUMENT_BYTES, where(ep, repo, what));
      return Optional.of(new RawManifest(bytes, MediaTypes.OCI_INDEX, Digest.of(bytes)));
    } catch (IOException e) {
      throw describe(ep, repo, what, e);
    }
  }

  /**
   * The manifest's media type: the body's {@code mediaType} field when present (it must agree with
   * a known Content-Type), else the Content-Type; a plain JSON Content-Type without a field is read
   * by shape.
   */
  static String mediaType(String contentType, byte[] bytes, String where) throws RegistryException {
    String ct =
        contentType == null ? "" : contentType.split(";", 2)[0].trim().toLowerCase(Locale.ROOT);
    JsonNode root;
    try {
      root = Json.MAPPER.readTree(bytes);
    } catch (IOException e) {
      throw new RegistryException(where + ": malformed JSON: " + firstLine(e.getMessage()));
    }
    if (root == null || !root.isObject()) {
      throw new RegistryException(where + ": not a JSON object");
    }
    String field = root.path("mediaType").isTextual() ? root.path("mediaType").asText() : null;
    String type;
    if (field != null) {
      if (MANIFEST_TYPES.contains(ct) && !ct.equals(field)) {
        throw new RegistryException(
            where + ": Content-Type " + ct + " but the body says mediaType " + field);
      }
      type = field;
    } else if (MANIFEST_TYPES.contains(ct)) {
      type = ct;
    } else if (ct.isEmpty() || ct.equals("application/json")) {
      type =
          root.has("manifests")
              ? MediaTypes.OCI_INDEX
              : root.has("layers") ? MediaTypes.OCI_MANIFEST : ct;
    } else {
      type = ct;
    }
    if (!MANIFEST_TYPES.contains(type)) {
      throw new RegistryException(
          where
              + ": unsupported manifest media type '"
              + type
              + "' (lazypull reads OCI and "
              + "Docker schema 2 manifests and indexes)");
    }
    return type;
  }

  // ---- blobs
  // ---------------------------------------------------------------------------------------------

  /**
   * Ranges up to this size are bounded by the request timeout; larger ones (whole-blob copies) only
   * by idleness.
   */
  static final long TIMED_RANGE_LIMIT = 64L << 20;

  /**
   * Opens bytes {@code [offset, offset+length)} of a blob. The channel yields exactly {@code
   * length} bytes or throws. Ranges up to 64 MiB must complete within the request timeout.
   */
  public ReadableByteChannel openBlob(Repository repo, Descriptor blob, long offset, long length)
      throws IOException {
    return openBlob(repo, blob, offset, length, length <= TIMED_RANGE_LIMIT, false);
  }

  /**
   * {@link #openBlob} from the registry itself, never a mirror: for bytes a mirror served that
   * failed verification (a mirror may hold a corrupt copy; the origin is the authority).
   */
  public ReadableByteChannel openBlobFromOrigin(
      Repository repo, Descriptor blob, long offset, long length) throws IOException {
    return openBlob(repo, blob, offset, length, length <= TIMED_RANGE_LIMIT, true);
  }

  private ReadableByteChannel openBlob(
      Repository repo, Descriptor blob, long offset, long length, boolean timed, boolean originOnly)
      throws IOException {
    if (offset < 0 || length < 0 || offset > blob.size() - length) {
      throw new IOException(
          "registry "
              + repo.registry()
              + ", repository "
              + repo.name()
              + ", blob "
              + blob.digest()
              + ": range "
              + offset
              + "+"
              + length
              + " is outside the blob's "
              + blob.size()
              + " bytes");
    }
    if (length == 0) {
      return new BoundedEmpty();
    }
    String what = "blob " + blob.digest();
    ResumingChannel.Opener opener =
        originOnly
            ? (off, len) ->
                openRangeAt(endpoints.origin(repo.registry()), repo, blob, off, len, timed)
            : (off, len) ->
                onPullEndpoints(repo, what, ep -> openRangeAt(ep, repo, blob, off, len, timed));
    return new ResumingChannel(
        opener.open(offset, length),
        opener,
        offset,
        length,
        config.retry().retries(),
        RegistryException.class,
        "registry " + repo + " " + what);
  }

  private ReadableByteChannel openRangeAt(
      Endpoint ep, Repository repo, Descriptor blob, long offset, long length, boolean timed)
      throws IOException {
    String what = "blob " + blob.digest();
    String where = where(ep, repo, what);
    long last = offset + length - 1;
    RegistryRequest req =
        RegistryRequest.get(
                ep.api(repo.name(), "blobs", blob.digest().toString()), Scope.pull(repo.name()))
            .header("Range", "bytes=" + offset + "-" + last)
            .cachingRedirectsAs(ep.base() + " " + repo.name() + " " + blob.digest());
    Response r = transport.execute(ep, timed ? req : req.untimed(), policyFor(ep));
    try {
      ReadableByteChannel ch =
          BlobRangeResponse.open(
              r,
              blob.size(),
              offset,
              length,
              config.maxSkip(),
              where,
              ep.mirror(),
              () -> {
                if (warnedRangeIgnored.add(ep.base().toString())) {
                  LOG.warning(
                      ep
                          + " ignores Range requests and sends whole blobs (HTTP 200); reading forward to each "
                          + "offset, at most "
                          + config.maxSkip()
                          + " bytes. Use a registry that supports ranges.");
                }
              });
      if (ch == null) {
        throw httpError(ep, repo, what, r);
      }
      return ch;
    } catch (IOException | RuntimeException e) {
      r.close();
      throw e;
    }
  }

  /**
   * Downloads a whole blob into {@code out} (no request timeout: blobs may be large) and verifies
   * its sha256 and size. Bytes from a mirror that do not verify are downloaded again from the
   * origin when {@code out} can be rewound (a file). On a mismatch the caller must discard what was
   * written; nothing should trust it.
   */
  public void downloadBlob(Repository repo, Descriptor blob, WritableByteChannel out)
      throws IOException {
    boolean[] mirror = {false};
    Digest actual = download(repo, blob, out, false, mirror);
    if (!actual.equals(blob.digest()) && mirror[0] && out instanceof SeekableByteChannel file) {
      LOG.warning(
          "registry "
              + repo.registry()
              + ", repository "
              + repo.name()
              + ", blob "
              + blob.digest()
              + ": a mirror's copy hashes to "
              + actual
              + "; downloading it from the registry itself");
      file.truncate(0);
      file.position(0);
      actual = download(repo, blob, out, true, mirror);
    }
    if (!actual.equals(blob.digest())) {
      throw new RegistryException(
          "registry "
              + repo.registry()
              + ", repository "
              + repo.name()
              + ", blob "
              + blob.digest()
              + ": content hashes to "
              + actual);
    }
  }

  private Digest download(
      Repository repo,
      Descriptor blob,
      WritableByteChannel out,
      boolean originOnly,
      boolean[] fromMirror)
      throws IOException {
    ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
    try (Sha256Stream sha = new Sha256Stream();
        ReadableByteChannel in = openBlob(repo, blob, 0, blob.size(), false, originOnly)) {
      while (in.read(buf.clear()) >= 0) {
        buf.flip();
        sha.update(buf.duplicate());
        while (buf.hasRemaining()) {
          out.write(buf);
        }
      }
      fromMirror[0] = in instanceof BlobSource.Served s && s.fromMirror();
      return new Digest(HexFormat.of().formatHex(sha.digest()));
    }
  }

  // ---- endpoints and errors
  // ------------------------------------------------------------------------------

  interface EndpointOp<T> {
    T apply(Endpoint ep) throws IOException;
  }

  /**
   * Runs {@code op} on each pull endpoint in order until one succeeds. A mirror's failure moves on
   * to the next endpoint (and cools the mirror down unless it merely lacked the content); the
   * origin's failure is the result.
   */
  <T> T onPullEndpoints(Repository repo, String what, EndpointOp<T> op) throws IOException {
    List<Endpoint> eps = endpoints.forPull(repo.registry());
    for (Endpoint ep : eps) {
      try {
        T t = op.apply(ep);
        endpoints.succeeded(ep);
        return t;
      } catch (IOException e) {
        IOException described = describe(ep, repo, what, e);
        if (!ep.mirror()) {
          throw described;
        }
        transport.stats.mirrorFallbacks.increment();
        boolean missing = e instanceof RegistryException re && re.isNotFound();
        if (!missing) {
          endpoints.failed(ep);
        }
        if (warnedMirror.add(ep.base() + (missing ? " missing" : " failing"))) {
          LOG.warning(
              described.getMessage()
                  + (missing
                      ? "; trying the next endpoint"
                      : "; skipping this mirror for "
                          + config.mirrorCooldown().toSeconds()
                          + " s"));
        }
      }
    }
    throw new IllegalStateException("no endpoints"); // unreachable: the origin is always last
  }

  /**
   * Gives connection-level errors the registry/repository/object context; registry errors have it
   * already.
   */
  IOException describe(Endpoint ep, Repository repo, String what, IOException e) {
    if (e instanceof RegistryException) {
      return e;
    }
    String hint = "";
    if (RegistryTransport.untrusted(e)) {
      hint = " (the server's certificate is not trusted: add its CA to registry.ca_files)";
    } else if (e instanceof SSLException && ep.base().isHttps() && !Loopback.is(ep.registry())) {
      hint =
          " (if "
              + ep.authority()
              + " speaks plain HTTP, use --plain-http or plain_http = true in its "
              + "[[registry.host]] entry)";
    }
    String msg =
        where(ep, repo, what)
            + ": "
            + (e.getMessage() == null ? e.getClass().getSimpleName() : e)
            + hint;
    IOException out = e instanceof EOFException ? new EOFException(msg) : new IOException(msg, e);
    if (out.getCause() == null) {
      out.initCause(e);
    }
    return out;
  }

  RetryPolicy policyFor(Endpoint ep) {
    return ep.mirror()
        ? RetryPolicy.none()
        : config.retry(); // a mirror's retry is the next endpoint
  }

  static String where(Endpoint ep, Repository repo, String what) {
    return "registry " + ep + ", repository " + repo.name() + ", " + what;
  }

  /**
   * The registry's refusal as an exception: status, error code and message, and a hint for auth
   * failures.
   */
  RegistryException httpError(Endpoint ep, Repository repo, String what, Response r) {
    ErrorBody body =
        r.request().method().equals("HEAD")
            ? new ErrorBody(null, null)
            : ErrorBody.parse(Bodies.errorBody(r));
    StringBuilder msg =
        new StringBuilder(where(ep, repo, what))
            .append(": HTTP ")
            .append(r.code())
            .append(body.suffix());
    if (r.code() == 401 || r.code() == 403) {
      boolean creds = transport.auth().hasCredentials(ep);
      msg.append(
          creds
              ? " (the credentials for " + ep.credentialKey() + " were not accepted)"
              : " (no credentials for "
                  + ep.credentialKey()
                  + "; log in with `docker login` or set "
                  + "registry.docker_config)");
    } else if (r.code() == 429 || r.code() == 503) {
      String after = r.header("Retry-After");
      if (after != null) {
        msg.append(" (Retry-After: ").append(ErrorBody.printable(after)).append(')');
      }
    } else if (r.code() == 416) {
      msg.append(" (range not satisfiable)");
    }
    return new RegistryException(msg.toString(), r.code(), body.code());
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }

  @Override
  public void close() {
    OkHttpClient http = transport.client();
    http.dispatcher().executorService().shutdown();
    http.connectionPool().evictAll();
  }

  /** A zero-length range. */
  private static final class BoundedEmpty implements ReadableByteChannel {
    private boolean open = true;

    @Override
    public int read(ByteBuffer dst) {
      return -1;
    }

    @Override
    public boolean isOpen() {
      return open;
    }

    @Override
    public void close() {
      open = false;
    }
  }
}

package dev.lazypull.testing;

import dev.lazypull.image.Digest;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import mockwebserver3.Dispatcher;
import mockwebserver3.MockResponse;
import mockwebserver3.RecordedRequest;
import okio.Buffer;
import okio.ByteString;

/**
 * An in-memory distribution API for MockWebServer: manifests by tag and digest (406-free Accept
 * handling is not modelled), blobs with single-range support, uploads (POST, PATCH, PUT, mount),
 * and an auth gate. Edge cases are scripted with {@link #intercept}, which sees every request first
 * and may answer it.
 */
public final class FakeRegistry extends Dispatcher {
  private static final Pattern PATH = Pattern.compile("/v2/(.+)/(manifests|blobs)/(.+)");
  private static final Pattern UPLOAD = Pattern.compile("/v2/(.+)/blobs/uploads/(.*)");

  public record StoredManifest(byte[] bytes, String mediaType) {}

  /** Blob bytes by digest, per repository name. */
  public final Map<String, Map<String, byte[]>> blobs = new ConcurrentHashMap<>();

  /** Manifests by "repo:reference" (tags and digests). */
  public final Map<String, StoredManifest> manifests = new ConcurrentHashMap<>();

  private final Map<String, Buffer> uploads = new ConcurrentHashMap<>();
  public final List<RecordedRequest> requests = new CopyOnWriteArrayList<>();

  /** Sees every request first; a non-null answer is sent as is. */
  public volatile Function<RecordedRequest, MockResponse> intercept;

  /**
   * When set, requests without exactly this Authorization header get 401 with {@link #challenge}.
   */
  public volatile String requiredAuthorization;

  public volatile String challenge = "Basic realm=\"fake\"";

  /** Send 200 and the whole blob even for Range requests. */
  public volatile boolean ignoreRange;

  /** Refuse monolithic PUTs larger than this with 413. */
  public volatile long maxMonolithic = Long.MAX_VALUE;

  public String putBlob(String repo, byte[] bytes) {
    String d = Digest.of(bytes).toString();
    blobs.computeIfAbsent(repo, k -> new ConcurrentHashMap<>()).put(d, bytes);
    return d;
  }

  public Digest putManifest(String repo, String tag, byte[] bytes, String mediaType) {
    Digest d = Digest.of(bytes);
    StoredManifest m = new StoredManifest(bytes, mediaType);
    manifests.put(repo + ":" + d, m);
    if (tag != null) {
      manifests.put(repo + ":" + tag, m);
    }
    return d;
  }

  public byte[] blob(String repo, String digest) {
    return blobs.getOrDefault(repo, Map.of()).get(digest);
  }

  /** Requests whose path contains {@code part}. */
  public List<RecordedRequest> requestsTo(String part) {
    return requests.stream().filter(r -> r.getUrl().encodedPath().contains(part)).toList();
  }

  @Override
  public MockResponse dispatch(RecordedRequest req) {
    MockResponse r = answer(req);
    if (req.getMethod().equals("HEAD")
        && r.getBody() != null) { // HEAD answers have no body on the wire
      return new MockResponse.Builder(r).body(new Buffer()).build();
    }
    return r;
  }

  private MockResponse answer(RecordedRequest req) {
    requests.add(req);
    Function<RecordedRequest, MockResponse> i = intercept;
    if (i != null) {
      MockResponse r = i.apply(req);
      if (r != null) {
        return r;
      }
    }
    String auth = requiredAuthorization;
    if (auth != null && !auth.equals(req.getHeaders().get("Authorization"))) {
      return new MockResponse.Builder()
          .code(401)
          .addHeader("WWW-Authenticate", challenge)
          .body(
              "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}")
          .build();
    }
    String path = req.getUrl().encodedPath();
    if (path.equals("/v2/")) {
      return new MockResponse.Builder().code(200).body("{}").build();
    }
    Matcher up = UPLOAD.matcher(path);
    if (up.matches()) {
      return upload(req, up.group(1), up.group(2));
    }
    Matcher m = PATH.matcher(path);
    if (!m.matches()) {
      return error(404, "NAME_UNKNOWN", "no route");
    }
    String repo = m.group(1);
    String ref = decode(m.group(3));
    if (m.group(2).equals("manifests")) {
      if (req.getMethod().equals("PUT")) {
        byte[] body = req.getBody() == null ? new byte[0] : req.getBody().toByteArray();
        Digest d =
            putManifest(
                repo,
                ref.startsWith("sha256:") ? null : ref,
                body,
                req.getHeaders().get("Content-Type"));
        return new MockResponse.Builder()
            .code(201)
            .addHeader("Docker-Content-Digest", d.toString())
            .build();
      }
      StoredManifest sm = manifests.get(repo + ":" + ref);
      if (sm == null) {
        return error(404, "MANIFEST_UNKNOWN", "manifest unknown");
      }
      return new MockResponse.Builder()
          .code(200)
          .addHeader("Content-Type", sm.mediaType)
          .addHeader("Docker-Content-Digest", Digest.of(sm.bytes).toString())
          .body(buffer(sm.bytes, 0, sm.bytes.length))
          .build();
    }
    byte[] data = blob(repo, ref);
    if (data == null) {
      return error(404, "BLOB_UNKNOWN", "blob unknown to registry");
    }
    if (req.getMethod().equals("HEAD")) {
      return new MockResponse.Builder()
          .code(200)
          .addHeader("Docker-Content-Digest", ref)
          .addHeaderLenient("Content-Length", data.length)
          .build();
    }
    String range = req.getHeaders().get("Range");
    if (range == null || ignoreRange) {
      return new MockResponse.Builder().code(200).body(buffer(data, 0, data.length)).build();
    }
    Matcher rm = Pattern.compile("bytes=(\\d+)-(\\d+)").matcher(range);
    if (!rm.matches()) {
      return error(400, "RANGE_INVALID", range);
    }
    long first = Long.parseLong(rm.group(1));
    long last = Math.min(Long.parseLong(rm.group(2)), data.length - 1);
    if (first >= data.length) {
      return new MockResponse.Builder()
          .code(416)
          .addHeader("Content-Range", "bytes */" + data.length)
          .build();
    }
    return new MockResponse.Builder()
        .code(206)
        .addHeader("Content-Range", "bytes " + first + "-" + last + "/" + data.length)
        .body(buffer(data, (int) first, (int) (last - first + 1)))
        .build();
  }

  private MockResponse upload(RecordedRequest req, String repo, String id) {
    switch (req.getMethod()) {
      case "POST":
        {
          String mount = req.getUrl().queryParameter("mount");
          String from = req.getUrl().queryParameter("from");
          if (mount != null && from != null && blob(from, mount) != null) {
            blobs
                .computeIfAbsent(repo, k -> new ConcurrentHashMap<>())
                .put(mount, blob(from, mount));
            return new MockResponse.Builder()
                .code(201)
                .addHeader("Docker-Content-Digest", mount)
                .build();
          }
          String uuid = UUID.randomUUID().toString();
          uploads.put(uuid, new Buffer());
          return new MockResponse.Builder()
              .code(202)
              .addHeader("Location", "/v2/" + repo + "/blobs/uploads/" + uuid + "?_state=s0")
              .addHeader("Range", "0-0")
              .build();
        }
      case "PATCH":
        {
          Buffer b = uploads.get(id);
          if (b == null) {
            return error(404, "BLOB_UPLOAD_UNKNOWN", id);
          }
          String cr = req.getHeaders().get("Content-Range");
          if (cr == null || !cr.startsWith(b.size() + "-")) {
            return error(416, "BLOB_UPLOAD_INVALID", "out of order chunk " + cr);
          }
          b.write(req.getBody() == null ? ByteString.EMPTY : req.getBody());
          return new MockResponse.Builder()
              .code(202)
              .addHeader(
                  "Location", "/v2/" + repo + "/blobs/uploads/" + id + "?_state=s" + b.size())
              .addHeader("Range", "0-" + (b.size() - 1))
              .build();
        }
      case "PUT":
        {
          Buffer b = uploads.remove(id);
          if (b == null) {
            return error(404, "BLOB_UPLOAD_UNKNOWN", id);
          }
          ByteString body = req.getBody() == null ? ByteString.EMPTY : req.getBody();
          if (b.size() == 0 && body.size() > maxMonolithic) {
            return error(413, "SIZE_INVALID", "too large");
          }
          b.write(body);
          byte[] all = b.readByteArray();
          String digest = req.getUrl().queryParameter("digest");
          if (digest == null || !digest.equals(Digest.of(all).toString())) {
            return error(400, "DIGEST_INVALID", "digest mismatch");
          }
          blobs.computeIfAbsent(repo, k -> new ConcurrentHashMap<>()).put(digest, all);
          return new MockResponse.Builder()
              .code(201)
              .addHeader("Docker-Content-Digest", digest)
              .addHeader("Location", "/v2/" + repo + "/blobs/" + digest)
              .build();
        }
      default:
        return error(405, "UNSUPPORTED", req.getMethod());
    }
  }

  public static MockResponse error(int code, String errorCode, String message) {
    return new MockResponse.Builder()
        .code(code)
        .addHeader("Content-Type", "application/json")
        .body("{\"errors\":[{\"code\":\"" + errorCode + "\",\"message\":\"" + message + "\"}]}")
        .build();
  }

  public static Buffer buffer(byte[] data, int offset, int length) {
    return new Buffer().write(data, offset, length);
  }

  private static String decode(String s) {
    return s.replace("%3A", ":").replace("%3a", ":");
  }
}

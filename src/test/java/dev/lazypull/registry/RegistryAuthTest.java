package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.testing.FakeRegistry;
import dev.lazypull.testing.MemoryBlobSource;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Challenges, token flows and credential sources against MockWebServer. */
class RegistryAuthTest {
  @StartStop public final MockWebServer server = new MockWebServer();
  @TempDir Path tmp;

  private final FakeRegistry reg = new FakeRegistry();
  private final AtomicLong now = new AtomicLong(1_000_000_000L);
  private final List<RecordedRequest> tokenRequests = new ArrayList<>();

  /** What the token endpoint hands out next, and the token the registry accepts. */
  private final AtomicReference<String> issue = new AtomicReference<>("tok-1");

  private volatile String tokenBody;
  private volatile int tokenStatus = 200;
  private Repository repo;
  private Descriptor blob;
  private byte[] data;

  @BeforeEach
  void setUp() {
    server.setDispatcher(reg);
    repo = new Repository(server.getHostName() + ":" + server.getPort(), "test/app");
    data = MemoryBlobSource.randomBytes(20_000, 1);
    reg.putBlob(repo.name(), data);
    blob = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(data), data.length);
    reg.intercept =
        r -> {
          if (!r.getUrl().encodedPath().equals("/token")) {
            return null;
          }
          synchronized (tokenRequests) {
            tokenRequests.add(r);
          }
          String body =
              tokenBody != null
                  ? tokenBody
                  : "{\"token\":\"" + issue.get() + "\",\"expires_in\":300}";
          return new MockResponse.Builder().code(tokenStatus).body(body).build();
        };
  }

  private void requireBearer(String scopeAttr) {
    reg.requiredAuthorization = "Bearer " + issue.get();
    reg.challenge =
        "Bearer realm=\""
            + server.url("/token")
            + "\",service=\"test-registry\""
            + (scopeAttr == null ? "" : ",scope=\"" + scopeAttr + "\"");
  }

  private RegistryClient client(CredentialStore creds) throws IOException {
    return new RegistryClient(RegistryClientTest.testConfig(), creds, d -> {}, now::get);
  }

  private byte[] read(RegistryClient c, long off, int len) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (ReadableByteChannel ch = c.openBlob(repo, blob, off, len)) {
      Channels.newInputStream(ch).transferTo(out);
    }
    return out.toByteArray();
  }

  @Test
  void anonymousBearerTokenIsFetchedOnceAndSentUpFront() throws Exception {
    requireBearer("repository:test/app:pull");
    RegistryClient c = client(CredentialStore.anonymous());
    for (int i = 0; i < 5; i++) {
      assertArrayEquals(Arrays.copyOfRange(data, i * 100, i * 100 + 50), read(c, i * 100, 50));
    }
    assertEquals(1, tokenRequests.size());
    RecordedRequest t = tokenRequests.get(0);
    assertEquals("test-registry", t.getUrl().queryParameter("service"));
    assertEquals(List.of("repository:test/app:pull"), t.getUrl().queryParameterValues("scope"));
    assertNull(
        t.getHeaders().get("Authorization"), "anonymous token requests carry no credentials");
    // one 401 to learn the challenge; every later request carried the token
    assertEquals(6, reg.requestsTo("/blobs/").size());
  }

  @Test
  void challengeScopesWithCommasAndSeveralScopesAreSentAsSeparateParameters() throws Exception {
    requireBearer("repository:test/app:pull,push repository:other/thing:pull");
    RegistryClient c = client(CredentialStore.anonymous());
    read(c, 0, 10);
    assertEquals(
        List.of(
            "repository:other/thing:pull",
            "repository:test/app:pull",
            "repository:test/app:pull,push"),
        tokenRequests.get(0).getUrl().queryParameterValues("scope"));
  }

  @Test
  void passwordCredentialsGoToTheTokenServerAsBasic() throws Exception {
    requireBearer(null);
    RegistryClient c = client(h -> Credentials.basic("alice", "s3cret"));
    read(c, 0, 10);
    assertEquals(
        Credentials.basic("alice", "s3cret").basicHeader(),
        tokenRequests.get(0).getHeaders().get("Authorization"));
  }

  @Test
  void tokensAreRefreshedBeforeExpiryDefaultingToSixtySeconds() throws Exception {
    requireBearer(null);
    tokenBody = "{\"access_token\":\"tok-1\"}"; // no expires_in: 60 s
    RegistryClient c = client(CredentialStore.anonymous());
    read(c, 0, 10);
    now.addAndGet(Duration.ofSeconds(40).toNanos());
    read(c, 0, 10);
    assertEquals(1, tokenRequests.size(), "still fresh at 40 s");
    now.addAndGet(
        Duration.ofSeconds(10).toNanos()); // 50 s: inside the refresh margin, not yet expired
    issue.set("tok-2");
    reg.requiredAuthorization = "Bearer tok-2";
    tokenBody = "{\"token\":\"tok-2\",\"expires_in\":3600}";
    int before = reg.requestsTo("/blobs/").size();
    read(c, 0, 10);
    assertEquals(2, tokenRequests.size(), "refreshed early");
    assertEquals(before + 1, reg.requestsTo("/blobs/").size(), "no 401 round trip");
    assertEquals(
        2, c.stats().tokenFetches.sum(), "token fetches are counted (auth refresh metric)");
  }

  @Test
  void a401WithACachedTokenFetchesANewOneOnceWithoutARestart() throws Exception {
    requireBearer(null);
    RegistryClient c = client(CredentialStore.anonymous());
    read(c, 0, 10);
    // the registry revokes tok-1 (key rotation): the next read gets 401, re-authenticates and
    // succeeds
    issue.set("tok-2");
    reg.requiredAuthorization = "Bearer tok-2";
    assertArrayEquals(Arrays.copyOfRange(data, 0, 10), read(c, 0, 10));
    assertEquals(2, tokenRequests.size());

    // a token server that keeps issuing a refused token: one retry, then a clear 401
    reg.requiredAuthorization = "Bearer never";
    RegistryException e =
        assertThrows(RegistryException.class, () -> c.openBlob(repo, blob, 0, 10));
    assertEquals(401, e.status());
    assertEquals(3, tokenRequests.size());
  }

  @Test
  void concurrentMissesShareOneTokenFetch() throws Exception {
    requireBearer(null);
    RegistryClient c = client(CredentialStore.anonymous());
    read(c, 0, 10);
    now.addAndGet(Duration.ofSeconds(299).toNanos()); // expired for everyone at once
    issue.set("tok-2");
    reg.requiredAuthorization = "Bearer tok-2";
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      List<Future<byte[]>> fs = new ArrayList<>();
      for (int i = 0; i < 16; i++) {
        fs.add(pool.submit(() -> read(c, 0, 10)));
      }
      for (Future<byte[]> f : fs) {
        assertArrayEquals(Arrays.copyOfRange(data, 0, 10), f.get(10, TimeUnit.SECONDS));
      }
    } finally {
      pool.shutdownNow();
    }
    assertEquals(2, tokenRequests.size());
  }

  @Test
  void identityTokensUseTheOAuth2PostFlow() throws Exception {
    requireBearer("repository:test/app:pull");
    RegistryClient c = client(h -> new Credentials(null, null, "refresh-xyz", null));
    read(c, 0, 10);
    RecordedRequest t = tokenRequests.get(0);
    assertEquals("POST", t.getMethod());
    String form = t.getBody().utf8();
    for (String part :
        List.of(
            "grant_type=refresh_token",
            "refresh_token=refresh-xyz",
            "service=test-registry",
            "client_id=lazypull",
            "scope=repository%3Atest%2Fapp%3Apull")) {
      assertTrue(form.contains(part), form);
    }
  }

  @Test
  void aRegistryTokenIsSentAsIsWithoutATokenServer() throws Exception {
    reg.requiredAuthorization = "Bearer static-token";
    reg.challenge = "Bearer realm=\"" + server.url("/token") + "\",service=\"x\"";
    RegistryClient c = client(h -> new Credentials(null, null, null, "static-token"));
    read(c, 0, 10);
    assertTrue(tokenRequests.isEmpty());
  }

  @Test
  void basicAuthUsesTheHostsCredentialsAndRefusalNeverLeaksThem() throws Exception {
    reg.requiredAuthorization = Credentials.basic("bob", "right-pass").basicHeader();
    reg.challenge = "Basic realm=\"registry\"";
    RegistryClient good =
        client(h -> h.equals(repo.registry()) ? Credentials.basic("bob", "right-pass") : null);
    assertArrayEquals(Arrays.copyOfRange(data, 0, 10), read(good, 0, 10));
    assertEquals(
        reg.requiredAuthorization,
        reg.requests.get(reg.requests.size() - 1).getHeaders().get("Authorization"));

    RegistryClient bad = client(h -> Credentials.basic("bob", "wrong-pass"));
    RegistryException e =
        assertThrows(RegistryException.class, () -> bad.openBlob(repo, blob, 0, 10));
    assertEquals(401, e.status());
    assertTrue(
        e.getMessage().contains("not accepted")
            && !e.getMessage().contains("wrong-pass")
            && !e.getMessage()
                .contains(Base64.getEncoder().encodeToString("bob:wrong-pass".getBytes())),
        e.getMessage());
    RegistryClient none = client(CredentialStore.anonymous());
    e = assertThrows(RegistryException.class, () -> none.openBlob(repo, blob, 0, 10));
    assertTrue(e.getMessage().contains("no credentials for " + repo.registry()), e.getMessage());
    assertFalse(Credentials.basic("bob", "right-pass").toString().contains("right-pass"));
  }

  @Test
  void aTokenServerRefusalIsClearAndSecretFree() throws Exception {
    requireBearer(null);
    tokenStatus = 401;
    RegistryClient c = client(h -> Credentials.basic("carol", "hunter2"));
    IOException e = assertThrows(IOException.class, () -> c.openBlob(repo, blob, 0, 10));
    assertTrue(
        e.getMessage().contains("token server")
            && e.getMessage().contains("refused")
            && !e.getMessage().contains("hunter2"),
        e.getMessage());
    tokenStatus = 200;
    tokenBody = "{\"nothing\":true}";
    e =
        assertThrows(
            IOException.class,
            () -> client(CredentialStore.anonymous()).openBlob(repo, blob, 0, 10));
    assertTrue(e.getMessage().contains("no token"), e.getMessage());
  }

  @Test
  void credentialChangesOnDiskArePickedUpWithoutARestart() throws Exception {
    reg.requiredAuthorization = Credentials.basic("dave", "new-pass").basicHeader();
    reg.challenge = "Basic realm=\"registry\"";
    Path config = tmp.resolve("config.json");
    writeAuth(config, "dave", "old-pass");
    RegistryClient c =
        client(new DockerConfigCredentials(config, null, new CredentialHelper(List.of())));
    assertThrows(RegistryException.class, () -> c.openBlob(repo, blob, 0, 10));
    writeAuth(config, "dave", "new-pass");
    Files.setLastModifiedTime(config, FileTime.fromMillis(System.currentTimeMillis() + 5000));
    assertArrayEquals(Arrays.copyOfRange(data, 0, 10), read(c, 0, 10));
  }

  @Test
  void aBearerChallengeWithoutARealmIsAnError() throws Exception {
    reg.requiredAuthorization = "Bearer x";
    reg.challenge = "Bearer service=\"x\"";
    IOException e =
        assertThrows(
            IOException.class,
            () -> client(CredentialStore.anonymous()).openBlob(repo, blob, 0, 10));
    assertTrue(e.getMessage().contains("realm"), e.getMessage());
  }

  private void writeAuth(Path config, String user, String pass) throws IOException {
    String auth =
        Base64.getEncoder().encodeToString((user + ":" + pass).getBytes(StandardCharsets.UTF_8));
    Files.writeString(
        config, "{\"auths\":{\"" + repo.registry() + "\":{\"auth\":\"" + auth + "\"}}}");
  }
}

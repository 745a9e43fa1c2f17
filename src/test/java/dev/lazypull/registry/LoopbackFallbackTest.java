package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.testing.FakeRegistry;
import dev.lazypull.testing.MemoryBlobSource;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A plain-HTTP registry on loopback works with no configuration (docker's convention), for pulls
 * and pushes; the probe happens once per host. (TLS on loopback staying TLS: {@link TlsTest}; the
 * rules: {@link LoopbackTest}.)
 */
class LoopbackFallbackTest {
  @StartStop public final MockWebServer server = new MockWebServer();
  private final FakeRegistry reg = new FakeRegistry();

  @BeforeEach
  void setUp() {
    server.setDispatcher(reg);
  }

  /** Defaults (no plain_http anywhere), with quick retries so a wrong fallback would fail fast. */
  private static RegistryClient unconfigured() throws IOException {
    RegistryConfig c =
        RegistryConfig.defaults()
            .withRetry(
                new RetryPolicy(
                    1, Duration.ofMillis(1), Duration.ofMillis(1), Duration.ofSeconds(1)))
            .withTimeouts(Duration.ofSeconds(2), Duration.ofSeconds(30), Duration.ofSeconds(60));
    return new RegistryClient(c, CredentialStore.anonymous(), d -> {});
  }

  private static byte[] read(
      RegistryClient client, Repository repo, Descriptor d, long off, long len) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (ReadableByteChannel ch = client.openBlob(repo, d, off, len)) {
      Channels.newInputStream(ch).transferTo(out);
    }
    return out.toByteArray();
  }

  private long v2Probes() {
    return reg.requests.stream().filter(r -> r.getUrl().encodedPath().equals("/v2/")).count();
  }

  @Test
  void aPlainHttpRegistryOn127001WorksWithoutConfiguration() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(200_000, 7);
    reg.putBlob("acc/app", data);
    Descriptor d = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(data), data.length);
    Repository repo = new Repository("127.0.0.1:" + server.getPort(), "acc/app");
    try (RegistryClient client = unconfigured()) {
      assertArrayEquals(Arrays.copyOfRange(data, 1000, 5000), read(client, repo, d, 1000, 4000));
      assertArrayEquals(data, read(client, repo, d, 0, data.length));
      assertTrue(client.isPlainHttp(repo.registry()));
    }
    assertEquals(1, v2Probes(), "one probe for the host, then remembered");
    for (RecordedRequest r : reg.requests) {
      assertEquals("http", r.getUrl().scheme());
      assertEquals(null, r.getHandshake());
    }
    assertEquals(2, reg.requestsTo("/blobs/").size());
  }

  @Test
  void localhostWithAPortWorksForPushesToo() throws Exception {
    Repository repo = new Repository("localhost:" + server.getPort(), "acc/pushed");
    byte[] data = MemoryBlobSource.randomBytes(10_000, 3);
    Descriptor d = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(data), data.length);
    try (RegistryClient client = unconfigured()) {
      assertEquals(
          ImagePusher.PushResult.UPLOADED,
          client.pusher().pushBlob(repo, d, BlobContent.of(data), null));
      assertArrayEquals(data, reg.blob("acc/pushed", d.digest().toString()));
      assertArrayEquals(data, read(client, repo, d, 0, data.length));
    }
    assertEquals(1, v2Probes());
  }

  /**
   * A plain HTTP server that never answers a TLS ClientHello (it waits for the end of a request
   * line that never comes) costs the probe at most the connect timeout, then plain HTTP is found.
   */
  @Test
  void aServerSilentToTlsIsProbedWithinTheConnectTimeout() throws Exception {
    try (ServerSocket ss = new ServerSocket(0, 8, InetAddress.getLoopbackAddress())) {
      List<Socket> held = new CopyOnWriteArrayList<>();
      Thread t =
          new Thread(
              () -> {
                try {
                  for (int n = 0; n < 4; n++) { // the TLS probe, the plain probe, and a spare
                    Socket s = ss.accept();
                    held.add(s);
                    InputStream in = s.getInputStream();
                    int first = in.read();
                    if (first == 0x16) {
                      continue; // a TLS record: say nothing, keep the connection open
                    }
                    byte[] head = new byte[4096];
                    int len = 0;
                    while (len < head.length && !new String(head, 0, len).contains("\r\n\r\n")) {
                      int k = in.read(head, len, head.length - len);
                      if (k < 0) {
                        break;
                      }
                      len += k;
                    }
                    s.getOutputStream()
                        .write(
                            ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                                .getBytes(StandardCharsets.US_ASCII));
                    s.close();
                  }
                } catch (IOException e) {
                  // closed at the end of the test
                }
              },
              "silent-to-tls");
      t.setDaemon(true);
      t.start();
      String registry = "127.0.0.1:" + ss.getLocalPort();
      try (RegistryClient client = unconfigured()) {
        long start = System.nanoTime();
        assertTrue(client.isPlainHttp(registry));
        long took = System.nanoTime() - start;
        assertTrue(
            took < Duration.ofSeconds(15).toNanos(), "probe took " + took / 1_000_000 + " ms");
      } finally {
        for (Socket s : held) {
          s.close();
        }
      }
    }
  }
}

package dev.lazypull.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.testing.FaultProxy.Fault;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import mockwebserver3.MockWebServer;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The fault proxy does to a response what each fault says, and nothing else. */
class FaultProxyTest {
  @StartStop public final MockWebServer upstream = new MockWebServer();
  private final FakeRegistry registry = new FakeRegistry();
  private final byte[] blob = MemoryBlobSource.randomBytes(20000, 5);
  private String path;

  @BeforeEach
  void setUp() {
    upstream.setDispatcher(registry);
    path = "/v2/test/app/blobs/" + registry.putBlob("test/app", blob);
  }

  /**
   * A raw ranged GET of bytes 4096-12287; returns the head and whatever body arrived before the end
   * or timeout.
   */
  private record Reply(String head, byte[] body, boolean timedOut) {
    String header(String name) {
      for (String line : head.split("\r\n")) {
        if (line.regionMatches(true, 0, name + ":", 0, name.length() + 1)) {
          return line.substring(name.length() + 1).trim();
        }
      }
      return null;
    }
  }

  private Reply get(FaultProxy proxy) throws IOException {
    String[] hp = proxy.host().split(":");
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress(hp[0], Integer.parseInt(hp[1])), 2000);
      s.setSoTimeout(1500);
      s.getOutputStream()
          .write(
              ("GET "
                      + path
                      + " HTTP/1.1\r\nHost: x\r\nRange: bytes=4096-12287\r\n"
                      + "Connection: close\r\n\r\n")
                  .getBytes(StandardCharsets.ISO_8859_1));
      InputStream in = s.getInputStream();
      ByteArrayOutputStream all = new ByteArrayOutputStream();
      boolean timedOut = false;
      try {
        byte[] buf = new byte[8192];
        for (int n; (n = in.read(buf)) > 0; ) {
          all.write(buf, 0, n);
        }
      } catch (SocketTimeoutException e) {
        timedOut = true;
      } catch (IOException e) {
        // a reset ends the reply too
      }
      byte[] b = all.toByteArray();
      String text = new String(b, StandardCharsets.ISO_8859_1);
      int end = text.indexOf("\r\n\r\n");
      return end < 0
          ? new Reply(text, new byte[0], timedOut)
          : new Reply(text.substring(0, end), Arrays.copyOfRange(b, end + 4, b.length), timedOut);
    }
  }

  private Reply with(Fault f) throws IOException {
    try (FaultProxy proxy = FaultProxy.start(upstream.getHostName(), upstream.getPort(), 1)) {
      proxy.slowMillis(20);
      proxy.schedule(FaultProxy.Schedule.always(f));
      Reply r = get(proxy);
      assertEquals(1, proxy.counts().get(f), f + " counted");
      return r;
    }
  }

  private byte[] range() {
    return Arrays.copyOfRange(blob, 4096, 12288);
  }

  @Test
  void withoutFaultsTheResponseIsForwardedFaithfully() throws IOException {
    for (Fault f : new Fault[] {Fault.NONE, Fault.SLOW_HEADERS, Fault.SLOW_BODY}) {
      Reply r = with(f);
      assertTrue(r.head.startsWith("HTTP/1.1 206"), r.head);
      assertEquals("bytes 4096-12287/20000", r.header("Content-Range"));
      assertArrayEquals(range(), r.body, f.toString());
    }
  }

  @Test
  void errorsAndRateLimits() throws IOException {
    assertTrue(with(Fault.SERVER_ERROR).head.matches("HTTP/1.1 50[03] (?s).*"));
    Reply r = with(Fault.TOO_MANY_REQUESTS);
    assertTrue(r.head.startsWith("HTTP/1.1 429"));
    assertTrue(r.header("Retry-After").matches("[01]"));
  }

  @Test
  void damagedBodiesAndHeaders() throws IOException {
    Reply cut = with(Fault.CLOSE_MID_BODY);
    assertEquals("8192", cut.header("Content-Length"));
    assertArrayEquals(Arrays.copyOf(range(), 4096), cut.body);

    Reply wrong = with(Fault.WRONG_CONTENT_RANGE);
    assertEquals("bytes 0-8191/20000", wrong.header("Content-Range"));
    assertArrayEquals(range(), wrong.body, "the body is the range asked for; the header lies");

    Reply shorter = with(Fault.SHORT_BODY);
    assertEquals("bytes 4096-12287/20000", shorter.header("Content-Range"));
    assertEquals(Integer.toString(shorter.body.length), shorter.header("Content-Length"));
    assertTrue(shorter.body.length < 8192);
    assertArrayEquals(Arrays.copyOf(range(), shorter.body.length), shorter.body);

    Reply longer = with(Fault.LONG_BODY);
    assertTrue(longer.body.length > 8192);
    assertArrayEquals(range(), Arrays.copyOf(longer.body, 8192));

    Reply corrupt = with(Fault.CORRUPT);
    int bits = 0;
    for (int i = 0; i < 8192; i++) {
      bits += Integer.bitCount((corrupt.body[i] ^ range()[i]) & 0xff);
    }
    assertTrue(bits >= 1 && bits <= 3, bits + " bits flipped");
  }

  @Test
  void stallsResetsAndTheRegistryGoingDown() throws IOException {
    Reply stall = with(Fault.STALL);
    assertTrue(stall.timedOut && stall.head.isEmpty(), "nothing sent");
    Reply mid = with(Fault.STALL_MID_BODY);
    assertTrue(mid.timedOut && mid.body.length == 4096, "half the body, then nothing");
    Reply reset = with(Fault.RESET);
    assertTrue(!reset.timedOut && reset.head.isEmpty());

    try (FaultProxy proxy = FaultProxy.start(upstream.getHostName(), upstream.getPort(), 1)) {
      proxy.down();
      assertThrows(ConnectException.class, () -> get(proxy));
      proxy.up();
      assertArrayEquals(range(), get(proxy).body, "back on the same port");
    }
  }
}

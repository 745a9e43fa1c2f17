package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ConnectException;
import java.security.cert.CertificateException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLHandshakeException;
import okhttp3.HttpUrl;
import org.junit.jupiter.api.Test;

/**
 * Which registries count as loopback, and how {@link Endpoints} settles a loopback origin's scheme.
 */
class LoopbackTest {
  @Test
  void loopbackNamesAreLiteralAddressesAndLocalhostOnly() {
    for (String r :
        new String[] {
          "localhost",
          "localhost:5000",
          "LOCALHOST:5000",
          "127.0.0.1",
          "127.0.0.1:5000",
          "127.1.2.3:80",
          "127.255.255.255",
          "[::1]:5000",
          "[::1]",
          "::1"
        }) {
      assertTrue(Loopback.is(r), r);
    }
    for (String r :
        new String[] {
          "docker.io",
          "ghcr.io",
          "registry.example.com:5000",
          "128.0.0.1:5000",
          "10.0.0.1:5000",
          "127.0.0.1.nip.io:5000",
          "localhost.example.com",
          "mylocalhost:5000",
          "127.0.0:5000",
          "127.0.0.256",
          "127.0.0.1.5",
          "[::2]:5000",
          "vm:5000",
          "0.0.0.0:5000"
        }) {
      assertFalse(Loopback.is(r), r);
    }
  }

  /** A prober answering from a table: URL prefix → status, or an exception to throw. */
  private static final class Prober implements Endpoints.Prober {
    final Map<String, Object> answers = new HashMap<>();
    final List<String> asked = new ArrayList<>();

    @Override
    public int status(HttpUrl url) throws IOException {
      asked.add(url.toString());
      Object a = answers.get(url.scheme());
      if (a instanceof IOException e) {
        throw e;
      }
      if (a == null) {
        throw new ConnectException("Connection refused");
      }
      return (Integer) a;
    }
  }

  private static Endpoints endpoints(Prober p, RegistryConfig c) {
    return new Endpoints(c, System::nanoTime, p);
  }

  @Test
  void aLoopbackRegistryWithoutTlsIsSpokenToInPlainHttpAndTheOutcomeIsRemembered() {
    Prober p = new Prober();
    p.answers.put("https", new SSLException("Unsupported or unrecognized SSL message"));
    p.answers.put("http", 200);
    Endpoints e = endpoints(p, RegistryConfig.defaults());
    assertEquals("http://127.0.0.1:5000/", e.origin("127.0.0.1:5000").base().toString());
    assertEquals(List.of("https://127.0.0.1:5000/v2/", "http://127.0.0.1:5000/v2/"), p.asked);
    assertEquals("http://127.0.0.1:5000/", e.origin("127.0.0.1:5000").base().toString());
    assertTrue(e.isPlainHttp("127.0.0.1:5000"));
    assertEquals(2, p.asked.size(), "probed once per host: " + p.asked);
    // another loopback host is probed on its own
    assertEquals("http://localhost:6000/", e.origin("localhost:6000").base().toString());
    assertEquals(4, p.asked.size());
  }

  @Test
  void aLoopbackRegistryThatSpeaksTlsStaysOnTlsEvenWithAnUntrustedCertificate() {
    Prober ok = new Prober();
    ok.answers.put("https", 401);
    ok.answers.put("http", 200);
    Endpoints e = endpoints(ok, RegistryConfig.defaults());
    assertEquals("https://localhost:5000/", e.origin("localhost:5000").base().toString());
    assertEquals(List.of("https://localhost:5000/v2/"), ok.asked);

    Prober untrusted = new Prober();
    SSLHandshakeException pkix = new SSLHandshakeException("PKIX path building failed");
    pkix.initCause(new CertificateException("unable to find valid certification path"));
    untrusted.answers.put("https", pkix);
    untrusted.answers.put("http", 200);
    Endpoints u = endpoints(untrusted, RegistryConfig.defaults());
    assertEquals("https://[::1]:5000/", u.origin("[::1]:5000").base().toString());
    assertEquals(
        List.of("https://[::1]:5000/v2/"),
        untrusted.asked,
        "a refused certificate never means plain HTTP");
  }

  @Test
  void aPlainHttpAnswerThatIsNotARegistryDoesNotCountAndNothingIsRememberedWhenNothingAnswers() {
    Prober p = new Prober();
    p.answers.put("https", new SSLException("Connection reset"));
    p.answers.put("http", 400); // e.g. a TLS server telling a plain HTTP client off
    Endpoints e = endpoints(p, RegistryConfig.defaults());
    assertEquals("https://127.0.0.1:5000/", e.origin("127.0.0.1:5000").base().toString());
    assertEquals(2, p.asked.size());
    // not settled: the next use probes again, and a registry that has come up is found
    p.answers.put("http", 200);
    assertEquals("http://127.0.0.1:5000/", e.origin("127.0.0.1:5000").base().toString());
    assertEquals(4, p.asked.size());

    Prober down = new Prober();
    Endpoints d = endpoints(down, RegistryConfig.defaults());
    assertEquals("https://localhost/", d.origin("localhost").base().toString());
    assertEquals(List.of("https://localhost/v2/", "http://localhost/v2/"), down.asked);
  }

  @Test
  void aNonLoopbackRegistryIsNeverProbedAndNeverFallsBack() {
    Prober p = new Prober();
    p.answers.put("https", new SSLException("Unsupported or unrecognized SSL message"));
    p.answers.put("http", 200);
    Endpoints e = endpoints(p, RegistryConfig.defaults());
    for (String r :
        new String[] {"registry.example.com:5000", "vm:5000", "10.1.2.3:5000", "docker.io"}) {
      assertTrue(e.origin(r).base().isHttps(), r);
      assertFalse(e.isPlainHttp(r), r);
    }
    assertEquals(List.of(), p.asked);
  }

  @Test
  void configuredAndRunTimePlainHttpNeedNoProbe() {
    Prober p = new Prober();
    p.answers.put("https", 200);
    RegistryConfig c =
        RegistryConfig.defaults()
            .withHost(new RegistryConfig.Host("localhost:5000", true, List.of()));
    Endpoints e = endpoints(p, c);
    assertEquals("http://localhost:5000/", e.origin("localhost:5000").base().toString());
    assertEquals(
        "https://reg.example.com:5000/", e.origin("reg.example.com:5000").base().toString());
    assertTrue(e.usePlainHttp("Reg.Example.com:5000"));
    assertFalse(e.usePlainHttp("reg.example.com:5000"), "already asked for");
    assertEquals(
        "http://reg.example.com:5000/", e.origin("reg.example.com:5000").base().toString());
    assertEquals(List.of(), p.asked);
  }
}

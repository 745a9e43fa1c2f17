package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.testing.FakeRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS is verified by default; a private CA is trusted only when configured with {@code ca_files}.
 */
class TlsTest {
  @StartStop public final MockWebServer server = new MockWebServer();
  @TempDir Path tmp;

  /**
   * A self-signed certificate for localhost from the JDK's keytool, as a PKCS12 store and a PEM
   * file.
   */
  private Path selfSigned(Path ks) throws Exception {
    String keytool = Path.of(System.getProperty("java.home"), "bin", "keytool").toString();
    run(
        keytool,
        "-genkeypair",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-alias",
        "srv",
        "-dname",
        "CN=localhost",
        "-ext",
        "san=dns:localhost,ip:127.0.0.1",
        "-validity",
        "2",
        "-keystore",
        ks.toString(),
        "-storetype",
        "PKCS12",
        "-storepass",
        "changeit",
        "-keypass",
        "changeit");
    Path pem = tmp.resolve("ca.pem");
    run(
        keytool,
        "-exportcert",
        "-rfc",
        "-alias",
        "srv",
        "-keystore",
        ks.toString(),
        "-storepass",
        "changeit",
        "-file",
        pem.toString());
    return pem;
  }

  private static void run(String... cmd) throws Exception {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new AssertionError(String.join(" ", cmd) + ": " + out);
    }
  }

  /**
   * Serves https with a fresh self-signed certificate (for localhost and 127.0.0.1); returns its
   * PEM.
   */
  private Path https(FakeRegistry reg) throws Exception {
    Path ks = tmp.resolve("server.p12");
    Path pem = selfSigned(ks);
    KeyStore store = KeyStore.getInstance("PKCS12");
    try (InputStream in = Files.newInputStream(ks)) {
      store.load(in, "changeit".toCharArray());
    }
    KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    kmf.init(store, "changeit".toCharArray());
    SSLContext ctx = SSLContext.getInstance("TLS");
    ctx.init(kmf.getKeyManagers(), null, null);
    server.useHttps(ctx.getSocketFactory());
    server.setDispatcher(reg);
    return pem;
  }

  @Test
  void aTlsRegistryOnLoopbackKeepsTlsWithItsCertificateVerified() throws Exception {
    FakeRegistry reg = new FakeRegistry();
    Path pem = https(reg);
    byte[] data = "loopback over tls".getBytes();
    reg.putBlob("t/app", data);
    Descriptor d = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(data), data.length);
    Repository repo = new Repository("127.0.0.1:" + server.getPort(), "t/app");
    // no plain_http anywhere: the loopback probe finds TLS and stays on it
    try (RegistryClient client =
        new RegistryClient(
            RegistryConfig.defaults().withCaFiles(List.of(pem)),
            CredentialStore.anonymous(),
            x -> {})) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      try (ReadableByteChannel ch = client.openBlob(repo, d, 0, data.length)) {
        Channels.newInputStream(ch).transferTo(out);
      }
      assertArrayEquals(data, out.toByteArray());
      assertFalse(client.isPlainHttp(repo.registry()));
    }
    assertFalse(reg.requests.isEmpty());
    for (RecordedRequest r : reg.requests) {
      assertEquals("https", r.getUrl().scheme(), r.toString());
      assertNotNull(r.getHandshake(), r.toString());
    }
  }

  @Test
  void anUntrustedCertificateIsRefusedAndAConfiguredCaIsTrusted() throws Exception {
    FakeRegistry reg = new FakeRegistry();
    Path pem = https(reg);
    byte[] data = "over tls".getBytes();
    reg.putBlob("t/app", data);
    Descriptor d = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(data), data.length);
    Repository repo = new Repository("localhost:" + server.getPort(), "t/app");

    RegistryClient strict =
        new RegistryClient(RegistryConfig.defaults(), CredentialStore.anonymous(), x -> {});
    IOException e = assertThrows(IOException.class, () -> strict.openBlob(repo, d, 0, data.length));
    assertTrue(
        e.getMessage().contains("https://localhost:" + server.getPort())
            && e.getMessage().contains("ca_files"),
        e.getMessage());
    assertFalse(
        strict.isPlainHttp(repo.registry()),
        "a loopback TLS server with a refused certificate stays TLS");

    RegistryConfig withCa = RegistryConfig.defaults().withCaFiles(List.of(pem));
    RegistryClient trusting = new RegistryClient(withCa, CredentialStore.anonymous(), x -> {});
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (ReadableByteChannel ch = trusting.openBlob(repo, d, 0, data.length)) {
      Channels.newInputStream(ch).transferTo(out);
    }
    assertArrayEquals(data, out.toByteArray());

    Files.writeString(tmp.resolve("junk.pem"), "not a certificate");
    IOException bad =
        assertThrows(
            IOException.class,
            () ->
                new RegistryClient(
                    RegistryConfig.defaults().withCaFiles(List.of(tmp.resolve("junk.pem"))),
                    CredentialStore.anonymous(),
                    x -> {}));
    assertTrue(bad.getMessage().contains("junk.pem"), bad.getMessage());
  }
}

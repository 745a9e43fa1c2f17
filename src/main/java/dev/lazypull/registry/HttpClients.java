package dev.lazypull.registry;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;
import okhttp3.ConnectionPool;
import okhttp3.Dns;
import okhttp3.OkHttpClient;

/**
 * Builds the one shared {@link OkHttpClient}: redirects off (we follow them ourselves, see {@link
 * RegistryTransport}), OkHttp's own auth off, idle pool sized to the fetch threads, timeouts from
 * the config, sockets that read ahead ({@link ReadAheadSockets}), and TLS verified against the
 * system's trust store plus any extra CA files.
 */
final class HttpClients {
  private HttpClients() {}

  static OkHttpClient create(RegistryConfig config) throws IOException {
    return create(config, null);
  }

  /** With {@code dns} (null: the system's) resolving registry names. */
  static OkHttpClient create(RegistryConfig config, Dns dns) throws IOException {
    OkHttpClient.Builder b =
        new OkHttpClient.Builder()
            .followRedirects(false)
            .followSslRedirects(false)
            .socketFactory(new ReadAheadSockets())
            .connectTimeout(config.connectTimeout())
            .readTimeout(config.readTimeout())
            .writeTimeout(config.readTimeout())
            .connectionPool(
                new ConnectionPool(Math.max(5, config.maxConnections()), 5, TimeUnit.MINUTES));
    if (dns != null) {
      b.dns(dns);
    }
    if (!config.caFiles().isEmpty()) {
      X509TrustManager tm = trustManager(config.caFiles());
      try {
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, new TrustManager[] {tm}, null);
        b.sslSocketFactory(ctx.getSocketFactory(), tm);
      } catch (GeneralSecurityException e) {
        throw new IOException("cannot set up TLS with the extra CA files: " + e.getMessage(), e);
      }
    }
    return b.build();
  }

  /**
   * The system's trust anchors plus every certificate in {@code caFiles} (PEM, one or more each).
   */
  static X509TrustManager trustManager(List<Path> caFiles) throws IOException {
    try {
      KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
      ks.load(null, null);
      int n = 0;
      for (X509Certificate c : systemAnchors()) {
        ks.setCertificateEntry("system-" + n++, c);
      }
      CertificateFactory cf = CertificateFactory.getInstance("X.509");
      for (Path f : caFiles) {
        Collection<? extends Certificate> certs;
        try (InputStream in = Files.newInputStream(f)) {
          certs = cf.generateCertificates(in);
        } catch (CertificateException e) {
          throw new IOException("CA file " + f + ": not PEM certificates: " + e.getMessage(), e);
        }
        if (certs.isEmpty()) {
          throw new IOException("CA file " + f + " holds no certificate");
        }
        for (Certificate c : certs) {
          ks.setCertificateEntry("extra-" + n++, c);
        }
      }
      TrustManagerFactory tmf =
          TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(ks);
      for (TrustManager tm : tmf.getTrustManagers()) {
        if (tm instanceof X509TrustManager x) {
          return x;
        }
      }
      throw new IOException("no X509 trust manager available");
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot build the trust store: " + e.getMessage(), e);
    }
  }

  private static List<X509Certificate> systemAnchors() throws GeneralSecurityException {
    TrustManagerFactory tmf =
        TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init((KeyStore) null);
    List<X509Certificate> out = new ArrayList<>();
    for (TrustManager tm : tmf.getTrustManagers()) {
      if (tm instanceof X509TrustManager x) {
        out.addAll(List.of(x.getAcceptedIssuers()));
      }
    }
    return out;
  }
}

package dev.lazypull.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.metrics.MetricsServer;
import dev.lazypull.oci.OciLayoutWriter;
import dev.lazypull.testing.DaemonHarness;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.FakeKernel;
import dev.lazypull.testing.FakeKernel.FakeObject;
import dev.lazypull.testing.FakeKernel.Outcome;
import dev.lazypull.testing.MemoryBlobSource;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Metrics scraped over HTTP and checked against counts the test knows. */
class DaemonMetricsTest {
  @TempDir Path tmp;

  static double value(String text, String series) {
    Matcher m = Pattern.compile("(?m)^" + Pattern.quote(series) + " (\\S+)$").matcher(text);
    if (!m.find()) {
      throw new AssertionError("no series " + series + " in\n" + text);
    }
    return Double.parseDouble(m.group(1));
  }

  @Test
  void scrapeReportsWhatTheDaemonDid() throws Exception {
    Catalog catalog = Catalog.load(tmp.resolve("state"));
    OciLayoutWriter w = new OciLayoutWriter(tmp.resolve("layout"));
    // a data blob: fetched chunk by chunk (a bootstrap is fetched whole, to check it against its
    // digest)
    Descriptor bootDesc =
        w.putBlob(MemoryBlobSource.randomBytes(4096, 2), MediaTypes.EROFS_BOOTSTRAP);
    Descriptor blobDesc =
        w.putBlob(MemoryBlobSource.randomBytes(256 << 10, 1), MediaTypes.EROFS_BLOB);
    catalog.register(
        new ImageRecord(
            "img",
            null,
            "oci:" + tmp.resolve("layout"),
            Digest.of(new byte[] {1}),
            bootDesc,
            List.of(blobDesc),
            List.of(blobDesc.digest().hex()),
            false),
        false);
    // no read-ahead: the test counts fetches exactly
    FetchSettings fetch =
        new FetchSettings(2, 64 << 10, 64 << 10, 0, Duration.ofSeconds(5), 64 << 10);
    try (DaemonHarness h =
        DaemonHarness.in(tmp)
            .config(
                c ->
                    c.fetch(fetch)
                        .maxOutstandingReads(16)
                        .cacheBudget(1 << 30)
                        .metrics("127.0.0.1:0", false))
            .start()) {
      FakeKernel kernel = h.kernel;
      MetricsServer server = h.daemon.metrics();
      FakeObject o = kernel.open("erofs,img", blobDesc.digest().hex());
      o.copen.get(5, TimeUnit.SECONDS);
      for (int i = 0; i < 3; i++) {
        assertEquals(Outcome.DATA, kernel.read(o, i * 65536L, 4096).get(5, TimeUnit.SECONDS));
      }
      ExpectedLogs.warning("failing READ of " + (1L << 40) + " bytes at " + 3 * 65536L);
      ExpectedLogs.warning(
          "READ "
              + 3 * 65536L
              + "+"
              + (1L << 40)
              + " failed: java.io.IOException: invalid READ range");
      assertEquals(
          Outcome.EIO,
          kernel.read(o, 3 * 65536L, 1L << 40).get(5, TimeUnit.SECONDS)); // invalid: no data
      ExpectedLogs.warning("no registered image has volume 'erofs,nope' and cookie 'nope'");
      kernel.open("erofs,nope", "nope").copen.get(5, TimeUnit.SECONDS);

      HttpResponse<String> r =
          HttpClient.newHttpClient()
              .send(
                  HttpRequest.newBuilder(
                          URI.create("http://127.0.0.1:" + server.port() + "/metrics"))
                      .build(),
                  HttpResponse.BodyHandlers.ofString());
      assertEquals(200, r.statusCode());
      assertTrue(
          r.headers()
              .firstValue("Content-Type")
              .orElse("")
              .startsWith("text/plain; version=0.0.4"));
      String text = r.body();
      assertEquals(3, value(text, "lazypull_reads_total{outcome=\"ok\"}"));
      assertEquals(1, value(text, "lazypull_reads_total{outcome=\"invalid\"}"));
      assertEquals(
          3 * 4096,
          value(text, "lazypull_read_requested_bytes_total"),
          "invalid READs are not counted");
      assertEquals(3 * 65536, value(text, "lazypull_fetched_bytes_total"));
      assertEquals(0, value(text, "lazypull_decompressed_bytes_total"), "a raw image");
      assertEquals(3, value(text, "lazypull_fetch_duration_seconds_count"));
      assertEquals(4, value(text, "lazypull_read_duration_seconds_count"));
      assertEquals(0, value(text, "lazypull_reads_inflight"));
      assertEquals(1, value(text, "lazypull_opens_refused_total"));
      assertEquals(3 * 65536, value(text, "lazypull_image_ready_bytes{fsid=\"img\"}"));
      assertEquals((256 << 10) + 4096, value(text, "lazypull_image_size_bytes{fsid=\"img\"}"));
      assertEquals(1 << 30, value(text, "lazypull_cache_budget_bytes"));
      assertTrue(text.contains("# TYPE lazypull_fetch_duration_seconds histogram"));
      assertEquals(1, value(text, "lazypull_frontend_info{frontend=\"fscache\"}"));
    }
  }

  @Test
  void nonLoopbackAddressesNeedExplicitPermission() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> MetricsServer.start("0.0.0.0:0", false));
    assertTrue(e.getMessage().contains("allow_remote"));
  }
}

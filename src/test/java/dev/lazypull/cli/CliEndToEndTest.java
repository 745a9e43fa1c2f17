package dev.lazypull.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.control.ControlClient;
import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.image.Json;
import dev.lazypull.prefetch.PrefetchConfig;
import dev.lazypull.prefetch.PrefetchPolicy;
import dev.lazypull.testing.DaemonHarness;
import dev.lazypull.testing.FakeKernel;
import dev.lazypull.testing.FakeKernel.FakeObject;
import dev.lazypull.testing.TestTrees;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CLI as scripts use it, end to end on the host: real control socket, real daemon code, a fake
 * devnode in place of the kernel (this host has no fscache). `mount` itself needs the kernel and is
 * covered in the guest.
 */
class CliEndToEndTest {
  @TempDir Path tmp;

  private record Out(int code, String stdout, String stderr) {}

  private static Out cli(String... args) {
    PrintStream oldOut = System.out;
    PrintStream oldErr = System.err;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      int code = Main.run(args);
      return new Out(
          code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
  }

  @Test
  void prefetchWithoutADaemonNeedsAReferenceItCanFetchOnItsOwn() {
    Out o = cli("prefetch", "lp-0123456789abcdef", "--socket", tmp.resolve("none.sock").toString());
    assertEquals(1, o.code());
    assertTrue(
        o.stderr().contains("no daemon socket") && o.stderr().contains("is the daemon running"),
        o.stderr());
  }

  @Test
  void statusPrefetchGcAndEvictThroughTheControlSocket() throws Exception {
    Path tree = Files.createDirectories(tmp.resolve("tree"));
    TestTrees.write(tree.resolve("data.bin"), 3L << 20, new Random(1));
    String ref = "oci:" + tmp.resolve("layout") + ":v1";
    assertEquals(0, cli("pack", tree.toString(), "--output", ref).code());

    Path socket = tmp.resolve("run/lazypull.sock");
    // the daemon as `lazypull daemon` assembles it, with its control socket, over a fake kernel
    try (DaemonHarness h =
        DaemonHarness.in(tmp)
            .config(
                c ->
                    c.socket(socket)
                        .fetch(
                            new FetchSettings(
                                2, 1 << 20, 4 << 20, 0, Duration.ofSeconds(10), 1 << 20))
                        .prefetch(new PrefetchConfig(PrefetchPolicy.NONE, 2, 0, Duration.ZERO)))
            .start()) {
      FakeKernel kernel = h.kernel;
      {
        String s = "--socket=" + socket;
        // register as `lazypull mount` does, then let the fake kernel "mount" it: OPEN both objects
        var image =
            new ControlClient(socket)
                .call(ControlClient.request("register").put("image", ref))
                .path("image");
        String fsid = image.path("fsid").asText();
        Out prefetchUnmounted = cli("prefetch", s, fsid);
        assertEquals(1, prefetchUnmounted.code());
        assertTrue(prefetchUnmounted.stderr().contains("not mounted"), prefetchUnmounted.stderr());
        FakeObject boot = kernel.open("erofs," + fsid, fsid);
        String blobHex = image.path("deviceNames").get(0).asText();
        FakeObject data = kernel.open("erofs," + fsid, blobHex);
        boot.copen.get(5, TimeUnit.SECONDS);
        data.copen.get(5, TimeUnit.SECONDS);

        Out wait = cli("prefetch", s, "--all", "--wait", fsid);
        assertEquals(0, wait.code(), wait.stderr());
        assertTrue(wait.stdout().contains("(100%)"), wait.stdout());
        Out status = cli("status", s);
        assertEquals(0, status.code());
        assertTrue(status.stdout().contains("images registered: 1"), status.stdout());
        assertTrue(status.stdout().contains("blobs served:      2"), status.stdout());
        assertTrue(status.stdout().contains("front end:         fscache"), status.stdout());
        Out json = cli("status", s, "--json");
        long total =
            image.path("bootstrap").path("size").asLong()
                + image.path("blobs").get(0).path("size").asLong();
        assertEquals(
            total,
            Json.MAPPER.readTree(json.stdout()).path("stats").path("bytesFetched").asLong(),
            "prefetch --all fetched the bootstrap and the blob, once");
        assertEquals(1, cli("prefetch", s, "no-such-image").code(), "unknown image: non-zero exit");
        Out policy = cli("prefetch", s, "--policy", "all", fsid);
        assertTrue(policy.stdout().contains("prefetch policy all"), policy.stdout());
        assertEquals(0, cli("gc", s, "--budget", "1G").code());
        Out evict = cli("evict", s, "no-such-image");
        assertEquals(1, evict.code());
        assertTrue(evict.stderr().contains("no registered image"), evict.stderr());
      }
    }
    Out down = cli("status", "--socket=" + socket);
    assertEquals(1, down.code());
    assertTrue(down.stderr().contains("is it running"), down.stderr());
  }
}

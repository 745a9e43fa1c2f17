package dev.lazypull.fetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.oci.OciLayoutBlobSource;
import dev.lazypull.oci.OciLayoutWriter;
import dev.lazypull.testing.MemoryBlobSource;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two lazypull processes on one host cache: both fill the same blob file at once, from a slow
 * source, and the source serves each chunk once between them — claims on the claims file keep them
 * from fetching a chunk the other is fetching, and the file tells each what the other has written.
 */
class SharedCacheProcessesTest {
  private static final int CHUNK = 64 << 10;
  private static final int CHUNKS = 96;

  @TempDir Path tmp;

  @Test
  void twoProcessesFillOneFileAndFetchEachChunkOnce() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(CHUNKS * CHUNK - 1000, 21);
    Path layout = tmp.resolve("layout");
    Descriptor blob = new OciLayoutWriter(layout).putBlob(data, MediaTypes.EROFS_BLOB);
    Path cache = tmp.resolve("cache");
    List<Process> children = new ArrayList<>();
    List<BufferedReader> outputs = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      Process p =
          new ProcessBuilder(
                  Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                  "-cp",
                  System.getProperty("java.class.path"),
                  Child.class.getName(),
                  cache.toString(),
                  layout.toString(),
                  blob.digest().toString(),
                  Long.toString(blob.size()))
              .redirectError(ProcessBuilder.Redirect.INHERIT)
              .start();
      children.add(p);
      outputs.add(
          new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)));
    }
    try {
      for (BufferedReader out : outputs) {
        assertEquals("ready", out.readLine(), "the child set up its cache and waits for go");
      }
      for (Process p : children) { // both start fetching at once
        OutputStream in = p.getOutputStream();
        in.write("go\n".getBytes(StandardCharsets.US_ASCII));
        in.flush();
      }
      long fetched = 0;
      List<String> lines = new ArrayList<>();
      for (int i = 0; i < 2; i++) {
        String line = outputs.get(i).readLine();
        lines.add(line);
        assertTrue(line != null && line.startsWith("fetched "), "child " + i + ": " + line);
        fetched += Long.parseLong(line.substring("fetched ".length()));
        assertTrue(children.get(i).waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, children.get(i).exitValue());
      }
      assertEquals(blob.size(), fetched, "each byte fetched once on the host: " + lines);
      Path file = BlobCacheDir.blobsDir(cache).resolve(blob.digest().hex());
      assertArrayEquals(data, Arrays.copyOf(Files.readAllBytes(file), data.length));
    } finally {
      children.forEach(Process::destroyForcibly);
    }
  }

  /** One process: fills the whole blob into the cache, counting what its own source served. */
  public static final class Child {
    public static void main(String[] args) throws Exception {
      Path cacheDir = Path.of(args[0]);
      Descriptor blob =
          new Descriptor(MediaTypes.EROFS_BLOB, Digest.parse(args[2]), Long.parseLong(args[3]));
      LongAdder served = new LongAdder();
      BlobSource source = new SlowSource(new OciLayoutBlobSource(Path.of(args[1])), served);
      FetchSettings settings =
          new FetchSettings(4, CHUNK, 4 * CHUNK, 0, Duration.ofSeconds(30), CHUNK);
      try (FetchCore core = new FetchCore(settings, new FetchStats(), null);
          BlobCacheDir cache = BlobCacheDir.open(cacheDir, core)) {
        BlobCacheFile f = cache.file(BlobRef.data(blob, null, "oci:/test"), source);
        f.fetcher().get(30, TimeUnit.SECONDS);
        System.out.println("ready");
        System.out.flush();
        if (!"go"
            .equals(
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII))
                    .readLine())) {
          System.exit(2);
        }
        List<CompletableFuture<Void>> all = new ArrayList<>();
        for (long off = 0; off < blob.size(); off += CHUNK) { // as a reader would: chunk by chunk
          all.add(f.ensure(off, CHUNK));
        }
        CompletableFuture.allOf(all.toArray(new CompletableFuture<?>[0])).get(60, TimeUnit.SECONDS);
        System.out.println("fetched " + served.sum());
      }
    }
  }

  /**
   * A source that takes a few milliseconds per request (a registry's latency), counting bytes
   * served.
   */
  private static final class SlowSource implements BlobSource {
    private final BlobSource inner;
    private final LongAdder served;

    SlowSource(BlobSource inner, LongAdder served) {
      this.inner = inner;
      this.served = served;
    }

    @Override
    public ReadableByteChannel openRange(Descriptor blob, long offset, long length)
        throws IOException {
      try {
        Thread.sleep(15); // latency of a request, not synchronization
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException(e);
      }
      ReadableByteChannel ch = inner.openRange(blob, offset, length);
      return new ReadableByteChannel() {
        @Override
        public int read(ByteBuffer dst) throws IOException {
          int n = ch.read(dst);
          if (n > 0) {
            served.add(n);
          }
          return n;
        }

        @Override
        public boolean isOpen() {
          return ch.isOpen();
        }

        @Override
        public void close() throws IOException {
          ch.close();
        }
      };
    }

    @Override
    public String describe() {
      return "slow " + inner.describe();
    }
  }
}

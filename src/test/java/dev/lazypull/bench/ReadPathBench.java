package dev.lazypull.bench;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.blob.ImageSource;
import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.fetch.FetchStats;
import dev.lazypull.fscache.Devnode;
import dev.lazypull.fscache.FscacheFrontend;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.testing.MemoryBlobSource;
import dev.lazypull.testing.Msgs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.LinkedBlockingDeque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The daemon's own time per READ, excluding the blob source and the disk: from the moment the
 * devnode hands a READ to the poll thread until READ_COMPLETE, minus the time spent inside the
 * source's reads and the pwrites (which are no-ops here). One READ in flight at a time, each a
 * cache miss, so the fetch path runs every time. Run: {@code mvn -Pbench test
 * -Dtest=ReadPathBench}.
 */
@Tag("bench")
class ReadPathBench {
  static final class BenchDevnode implements Devnode {
    final LinkedBlockingDeque<byte[]> queue = new LinkedBlockingDeque<>();
    volatile long readAt;
    volatile long doneAt;
    volatile int lastCompleted = -1;
    long writeNanos;
    volatile Thread waiter;

    @Override
    public boolean awaitRequest(int timeoutMillis) throws IOException {
      try {
        byte[] m = queue.pollFirst(timeoutMillis, TimeUnit.MILLISECONDS);
        if (m == null) {
          return false;
        }
        queue.addFirst(m);
        return true;
      } catch (InterruptedException e) {
        return false;
      }
    }

    @Override
    public int read(ByteBuffer buf) {
      byte[] m = queue.pollFirst();
      if (m == null) {
        return 0;
      }
      ByteBuffer b = buf.duplicate();
      b.clear();
      b.put(m);
      readAt = System.nanoTime();
      return m.length;
    }

    @Override
    public void command(String command) {}

    @Override
    public void readComplete(int anonFd, int msgId) {
      doneAt = System.nanoTime();
      lastCompleted = msgId;
      LockSupport.unpark(waiter);
    }

    @Override
    public long pwrite(int anonFd, ByteBuffer buf, long offset) {
      long t = System.nanoTime();
      int n = buf.remaining();
      writeNanos += System.nanoTime() - t;
      return n;
    }

    @Override
    public long seekData(int anonFd, long offset) {
      return -1;
    }

    @Override
    public long seekHole(int anonFd, long offset) {
      return -1;
    }

    @Override
    public void adoptAnonFd(int anonFd) {}

    @Override
    public void closeAnonFd(int anonFd) {}

    @Override
    public void close() {}
  }

  /** Wraps a source and adds up the time its channels spend reading. */
  static final class TimedSource implements BlobSource {
    final BlobSource inner;
    volatile long nanos;

    TimedSource(BlobSource inner) {
      this.inner = inner;
    }

    @Override
    public ReadableByteChannel openRange(Descriptor blob, long offset, long length)
        throws IOException {
      long t0 = System.nanoTime();
      ReadableByteChannel ch = inner.openRange(blob, offset, length);
      nanos += System.nanoTime() - t0;
      return new ReadableByteChannel() {
        @Override
        public int read(ByteBuffer dst) throws IOException {
          long t = System.nanoTime();
          int n = ch.read(dst);
          nanos += System.nanoTime() - t;
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
      return "timed";
    }
  }

  @Test
  void daemonTimePerRead() throws Exception {
    run(4096, 4096, 200_000, 50_000);
    run(128 << 10, 128 << 10, 40_000, 20_000);
  }

  private void run(int chunkSize, int readSize, int warmup, int measured) throws Exception {
    int total = warmup + measured;
    long blobSize = (long) total * readSize;
    MemoryBlobSource mem = new MemoryBlobSource();
    byte[] data = new byte[(int) Math.min(blobSize, 1L << 30)];
    Descriptor blob = mem.add(data, MediaTypes.EROFS_BLOB);
    // The bench addresses past `data` by wrapping offsets into it: every READ is a fresh miss.
    Descriptor big = new Descriptor(MediaTypes.EROFS_BLOB, blob.digest(), blobSize);
    BlobSource wrapping =
        new BlobSource() {
          @Override
          public ReadableByteChannel openRange(Descriptor b, long offset, long length)
              throws IOException {
            return mem.openRange(blob, offset % data.length, length);
          }

          @Override
          public String describe() {
            return "wrap";
          }
        };
    TimedSource source = new TimedSource(wrapping);
    ImageSource image =
        new ImageSource() {
          @Override
          public LazyImage resolve() {
            throw new UnsupportedOperationException();
          }

          @Override
          public BlobSource blobs() {
            return source;
          }
        };
    Path state = Files.createTempDirectory("lp-bench");
    Catalog catalog = Catalog.load(state);
    catalog.register(
        new ImageRecord(
            "bench",
            null,
            "bench:image",
            Digest.of(new byte[] {1}),
            big,
            List.of(),
            List.of(),
            false),
        false);
    ImageSources sources =
        new ImageSources(ref -> image); // "bench:image" parses as a registry reference
    BenchDevnode dev = new BenchDevnode();
    dev.waiter = Thread.currentThread();
    FetchSettings settings =
        new FetchSettings(
            4,
            chunkSize,
            chunkSize,
            FetchSettings.DEFAULT_READ_AHEAD,
            Duration.ofSeconds(30),
            Math.max(chunkSize, 4096));
    try (FetchCore core = new FetchCore(settings, new FetchStats(), null);
        FscacheFrontend daemon = new FscacheFrontend(dev, catalog, sources, core, 64)) {
      daemon.start();
      dev.queue.add(Msgs.open(1, 1, "erofs,bench", "bench", 100));
      Thread.sleep(200);
      long[] own = new long[measured];
      for (int i = 0; i < total; i++) {
        int msgId = 10 + i;
        source.nanos = 0;
        dev.writeNanos = 0;
        dev.queue.add(Msgs.read(msgId, 1, (long) i * readSize, readSize));
        while (dev.lastCompleted != msgId) {
          LockSupport.parkNanos(50_000);
        }
        if (i >= warmup) {
          own[i - warmup] = dev.doneAt - dev.readAt - source.nanos - dev.writeNanos;
        }
      }
      Arrays.sort(own);
      System.out.printf(
          Locale.ROOT,
          "ReadPathBench chunk=%dK read=%dK n=%d: daemon time per READ p50 %.1f us, p90 %.1f us,"
              + " p99 %.1f us, p99.9 %.1f us (source+disk excluded)%n",
          chunkSize >> 10,
          readSize >> 10,
          measured,
          own[measured / 2] / 1e3,
          own[measured * 9 / 10] / 1e3,
          own[measured * 99 / 100] / 1e3,
          own[measured * 999 / 1000] / 1e3);
    }
  }
}

package dev.lazypull.testing;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.blob.BoundedChannel;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/** Blobs held in memory; records every range asked for and can be made slow, failing or gated. */
public final class MemoryBlobSource implements BlobSource {
  public record Range(Digest blob, long offset, long length) {}

  private final Map<Digest, byte[]> blobs = new ConcurrentHashMap<>();
  public final List<Range> requests = new CopyOnWriteArrayList<>();
  public volatile IOException failWith;
  public volatile long delayMillis;

  /** When set, every openRange waits for it (to hold fetches in flight). */
  public volatile CountDownLatch gate;

  /** When set, bodies end this many bytes early (a source that lies about its length). */
  public volatile int truncateBy;

  public Descriptor add(byte[] bytes, String mediaType) {
    Digest d = Digest.of(bytes);
    blobs.put(d, bytes);
    return new Descriptor(mediaType, d, bytes.length);
  }

  /**
   * Serves {@code bytes} under {@code digest} from now on (a source whose content went bad, or was
   * repaired).
   */
  public void serveAs(Digest digest, byte[] bytes) {
    blobs.put(digest, bytes);
  }

  @Override
  public ReadableByteChannel openRange(Descriptor blob, long offset, long length)
      throws IOException {
    requests.add(new Range(blob.digest(), offset, length));
    CountDownLatch g = gate;
    try {
      if (g != null && !g.await(30, TimeUnit.SECONDS)) {
        throw new IOException("gate never opened");
      }
      if (delayMillis > 0) {
        Thread.sleep(delayMillis);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted");
    }
    if (failWith != null) {
      throw failWith;
    }
    byte[] data = blobs.get(blob.digest());
    if (data == null) {
      throw new IOException("no blob " + blob.digest());
    }
    if (offset < 0 || offset + length > data.length) {
      throw new IOException("range " + offset + "+" + length + " outside " + data.length);
    }
    int n = (int) Math.max(0, length - truncateBy);
    ReadableByteChannel ch = Channels.newChannel(new ByteArrayInputStream(data, (int) offset, n));
    return new BoundedChannel(ch, length, "memory blob");
  }

  @Override
  public String describe() {
    return "memory";
  }

  public static byte[] randomBytes(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  /** Copies a buffer's remaining bytes. */
  public static byte[] bytes(ByteBuffer buf) {
    byte[] b = new byte[buf.remaining()];
    buf.duplicate().get(b);
    return b;
  }
}

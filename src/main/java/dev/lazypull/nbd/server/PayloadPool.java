package dev.lazypull.nbd.server;

import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.nbd.protocol.PayloadBuffers;
import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * WRITE payload buffers of one server, within a byte budget shared by all its connections: a
 * connection whose next payload does not fit waits (it stops reading; its client waits in its
 * socket) until earlier writes are done with theirs. The budget is at least one maximum payload, so
 * a single write always fits. Buffers are direct (written with pwrite) and small ones are reused.
 */
final class PayloadPool implements PayloadBuffers {
  /**
   * Buffers up to this size are kept for reuse (the kernel writes up to 128 KiB or 512 KiB at
   * once).
   */
  static final int POOLED = 1 << 20;

  private static final int MAX_POOLED_BUFFERS = 32;

  private final int budget;
  private final Semaphore bytes;
  private final ConcurrentLinkedQueue<ByteBuffer> free = new ConcurrentLinkedQueue<>();
  private final AtomicInteger freeCount = new AtomicInteger();

  /**
   * @param budget bytes all payloads in progress may take together; raised to {@link
   *     Nbd#MAX_PAYLOAD}
   */
  PayloadPool(int budget) {
    this.budget = Math.max(budget, Nbd.MAX_PAYLOAD);
    this.bytes = new Semaphore(this.budget);
  }

  int budget() {
    return budget;
  }

  /** Bytes of the budget in use now. */
  int inUse() {
    return budget - bytes.availablePermits();
  }

  @Override
  public ByteBuffer take(int length) {
    if (length <= 0 || length > Nbd.MAX_PAYLOAD) {
      throw new IllegalArgumentException("payload of " + length + " bytes");
    }
    bytes.acquireUninterruptibly(length);
    if (length <= POOLED) {
      ByteBuffer b = free.poll();
      if (b != null) {
        freeCount.decrementAndGet();
        return b.clear().limit(length);
      }
      return ByteBuffer.allocateDirect(POOLED).limit(length);
    }
    return ByteBuffer.allocateDirect(length);
  }

  @Override
  public void give(ByteBuffer buffer) {
    int length = buffer.capacity() == POOLED ? buffer.limit() : buffer.capacity();
    // The permits follow the length taken: a pooled buffer comes back with the limit it was taken
    // with.
    if (buffer.capacity() == POOLED && freeCount.incrementAndGet() <= MAX_POOLED_BUFFERS) {
      free.add(buffer);
    } else if (buffer.capacity() == POOLED) {
      freeCount.decrementAndGet();
    }
    bytes.release(length);
  }
}

package dev.lazypull.nbd.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;

/**
 * An {@link ExportDevice} that takes writes. A write or zeroing is <em>completed</em> when its
 * future completes: from then on every read (on any connection) sees it; it is <em>durable</em> —
 * survives a crash — once a {@link #flush} called after it has returned. The server replies to a
 * request only when it is completed, and to a FUA request only after a flush.
 */
public interface WritableDevice extends ExportDevice {
  /**
   * Writes {@code data.remaining()} bytes at {@code offset} (inside the device). Completes at once,
   * or later when bytes the write does not cover must be fetched first (a partial block over the
   * base). The device does not keep {@code data} once the future completes.
   */
  CompletableFuture<Void> write(long offset, ByteBuffer data);

  /**
   * Makes {@code [offset, offset+length)} read as zeros (WRITE_ZEROES, TRIM); completes as {@link
   * #write}.
   */
  CompletableFuture<Void> zero(long offset, long length);

  /** Makes every write and zeroing completed before this call durable. Blocking (fdatasync). */
  void flush() throws IOException;

  /**
   * Whether several connections may share the device ({@code CAN_MULTI_CONN}): reads on one see
   * writes completed on another, and a flush covers writes completed on any.
   */
  boolean multiConn();
}

package dev.lazypull.nbd.server;

import dev.lazypull.nbd.protocol.ExportInfo;
import dev.lazypull.nbd.protocol.PayloadBuffers;
import dev.lazypull.sys.OnceLogger;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledFuture;

/** What every connection of one server shares, and the hooks back into the server. */
interface ServerContext {
  ExportDevice device();

  ExportInfo export();

  /** Where READs whose data had to be fetched are answered. */
  Executor replies();

  /** A READ whose data is not in hand after this long is answered EIO. */
  Duration readDeadline();

  /** Requests in progress per connection before the connection stops reading more. */
  int maxInflight();

  NbdStats stats();

  /**
   * Where WRITE payloads go (writable exports; null when the export is read-only and payloads are
   * skipped).
   */
  PayloadBuffers payloads();

  OnceLogger log();

  /** Closes {@code c} if it is still haggling options when the handshake timeout expires. */
  ScheduledFuture<?> scheduleHandshakeDeadline(NbdConnection c);

  /** {@code c} has ended. */
  void closed(NbdConnection c);

  /** The calling reply-pool thread's READ buffer. */
  static ByteBuffer replyBuffer() {
    return Buffers.REPLY.get();
  }

  /** Holder so the thread-local is created once. */
  final class Buffers {
    static final ThreadLocal<ByteBuffer> REPLY = ThreadLocal.withInitial(ReadResponder::newBuffer);

    private Buffers() {}
  }
}

package dev.lazypull.nbd.server;

import dev.lazypull.nbd.device.ExportDevice;
import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.nbd.protocol.NbdProtocolException;
import dev.lazypull.nbd.protocol.NbdRequest;
import dev.lazypull.nbd.protocol.OptionCodec;
import dev.lazypull.nbd.protocol.ReplyCodec;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One client connection: the fixed-newstyle handshake (skipped for the kernel client, which starts in
 * transmission), then the request loop on this connection's own thread.
 *
 * <p>READs whose bytes are already cached are answered right here, in order; the others are answered from the
 * reply pool when their fetch completes, out of order. At most {@link ServerContext#maxInflight()} requests
 * are in progress per connection; beyond that the loop stops reading, so a client cannot queue unbounded work.
 * Bad requests get error replies and the connection goes on; only a broken stream (bad magic, an oversized
 * WRITE payload, a write failure after a success header) ends it.
 */
final class NbdConnection implements Runnable {
  private static final Logger LOG = Logger.getLogger(NbdConnection.class.getName());

  private final NbdTransport transport;
  private final ServerContext ctx;
  private final boolean kernel;
  private final ReplySink sink;
  private final ReadResponder responder;
  private final Semaphore inflight;
  private final ByteBuffer header = ByteBuffer.allocateDirect(OptionCodec.OPTION_HEADER_SIZE + 16);
  private ByteBuffer ownBuffer;
  private boolean structured;
  private int metaContextId;
  private volatile boolean shuttingDown;

  /**
   * @param kernel the peer is the kernel's nbd driver: no handshake, simple replies only
   */
  NbdConnection(NbdTransport transport, ServerContext ctx, boolean kernel) {
    this.transport = transport;
    this.ctx = ctx;
    this.kernel = kernel;
    this.sink = new ReplySink(transport);
    this.responder = new ReadResponder(ctx.device());
    this.inflight = new Semaphore(ctx.maxInflight());
  }

  String peer() {
    return transport.peer();
  }

  @Override
  public void run() {
    try {
      if (kernel || handshake()) {
        transmission();
      }
    } catch (EOFException e) {
      LOG.fine(() -> peer() + ": closed by the client");
    } catch (NbdProtocolException e) {
      ctx.stats().protocolErrors.increment();
      ctx.log().warn("proto:" + e.getMessage(), peer() + ": protocol violation, disconnecting: " + e.getMessage());
    } catch (IOException e) {
      LOG.fine(() -> peer() + ": " + e.getMessage());
    } catch (RuntimeException e) {
      LOG.log(Level.WARNING, peer() + ": unexpected failure", e);
    } finally {
      drain();
      transport.close();
      ctx.closed(this);
    }
  }

  /** Stops taking requests: later ones are answered ESHUTDOWN; in-flight ones finish. */
  void shutdown() {
    shuttingDown = true;
  }

  /** Ends the connection now (server stop after the grace period, a stalled client). */
  void abort() {
    sink.breakConnection();
  }

  /** How long a reply to this client has been blocked in a write (it stopped reading), 0 if none is. */
  long writeBlockedNanos(long now) {
    return sink.writeBlockedNanos(now);
  }

  // ---- handshake -----------------------------------------------------------------------------------------

  private boolean handshake() throws IOException, NbdProtocolException {
    Negotiator neg = new Negotiator(ctx.export());
    ScheduledFuture<?> deadline = ctx.scheduleHandshakeDeadline(this);
    try {
      sink.send(neg.greeting());
      neg.clientFlags(readFully(4));
      while (true) {
        OptionCodec.OptionHeader h = OptionCodec.decodeHeader(readFully(OptionCodec.OPTION_HEADER_SIZE));
        Negotiator.Step step;
        if (h.length() > Nbd.MAX_OPTION_PAYLOAD) {
          skip(h.length());
          step = neg.oversized(h.option(), h.length());
        } else {
          ByteBuffer payload = ByteBuffer.allocate((int) h.length());
          readInto(payload);
          step = neg.option(h.option(), payload.flip());
        }
        if (step.note() != null) {
          LOG.fine(() -> peer() + ": " + Nbd.optionName(h.option()) + ": " + step.note());
        }
        sink.send(step.replies().toArray(new ByteBuffer[0]));
        switch (step.next()) {
          case CONTINUE:
            break;
          case TRANSMIT:
            structured = neg.structuredReplies();
            metaContextId = neg.metaContextId();
            LOG.fine(() -> peer() + ": transmission (structured " + structured + ", base:allocation "
                + (metaContextId != 0) + ")");
            return true;
          default:
            return false;
        }
      }
    } finally {
      deadline.cancel(false);
    }
  }

  private ByteBuffer readFully(int n) throws IOException {
    ByteBuffer b = header.clear().limit(n);
    readInto(b);
    return b.flip();
  }

  private void readInto(ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      if (transport.read(b) < 0) {
        throw new EOFException();
      }
    }
  }

  private void skip(long n) throws IOException {
    ByteBuffer scratch = ByteBuffer.allocateDirect(64 << 10);
    while (n > 0) {
      scratch.clear().limit((int) Math.min(n, scratch.capacity()));
      readInto(scratch);
      n -= scratch.limit();
    }
  }

  // ---- transmission --------------------------------------------------------------------------------------

  private void transmission() throws IOException, NbdProtocolException {
    ByteBuffer hdr = ByteBuffer.allocateDirect(Nbd.REQUEST_SIZE);
    while (true) {
      hdr.clear();
      int got = 0;
      while (hdr.hasRemaining()) {
        int n = transport.read(hdr);
        if (n < 0) {
          if (got > 0) {
            throw new NbdProtocolException("stream ended inside a request header");
          }
          LOG.fine(() -> peer() + ": client closed its side");
          return; // a half-close: in-flight replies still go out (drain)
        }
        got += n;
      }
      NbdRequest r = NbdRequest.decode(hdr.flip());
      ctx.stats().requests.increment();
      if (r.type() == Nbd.CMD_DISC) {
        LOG.fine(() -> peer() + ": DISC");
        return;
      }
      if (r.type() == Nbd.CMD_WRITE) {
        discardPayload(r);
      }
      acquire();
      if (shuttingDown) {
        error(r, Nbd.ESHUTDOWN, "the server is shutting down");
        continue;
      }
      dispatch(r);
    }
  }

  private void acquire() throws IOException {
    try {
      inflight.acquire();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted");
    }
  }

  /** A refused WRITE's payload must still be consumed to stay in step with the stream. */
  private void discardPayload(NbdRequest r) throws IOException, NbdProtocolException {
    if (r.length() > Nbd.MAX_PAYLOAD) {
      throw new NbdProtocolException("WRITE payload of " + r.length() + " bytes exceeds the advertised maximum "
          + Nbd.MAX_PAYLOAD);
    }
    skip(r.length());
  }

  private void dispatch(NbdRequest r) {
    int flags = r.flags() & ~Nbd.CMD_FLAG_FUA; // clients are known to set FUA anywhere; it means nothing here
    switch (r.type()) {
      case Nbd.CMD_READ -> read(r, flags);
      case Nbd.CMD_WRITE, Nbd.CMD_TRIM, Nbd.CMD_WRITE_ZEROES -> {
        ctx.stats().writesRefused.increment();
        error(r, Nbd.EPERM, "the export is read-only");
      }
      case Nbd.CMD_FLUSH -> ok(r); // nothing is ever written, so there is nothing to flush
      case Nbd.CMD_CACHE -> cache(r, flags);
      case Nbd.CMD_BLOCK_STATUS -> blockStatus(r, flags);
      default -> invalid(r, "unknown command " + r.type());
    }
  }

  private void read(NbdRequest r, int flags) {
    ctx.stats().reads.increment();
    int allowed = structured ? Nbd.CMD_FLAG_DF : 0;
    if ((flags & ~allowed) != 0) {
      invalid(r, "READ with unsupported flags 0x" + Integer.toHexString(r.flags()));
      return;
    }
    if (!checkRange(r)) {
      return;
    }
    if (r.length() > Nbd.MAX_PAYLOAD) {
      invalid(r, "READ of " + r.length() + " bytes exceeds the maximum of " + Nbd.MAX_PAYLOAD);
      return;
    }
    CompletableFuture<Void> ready = prepare(r);
    if (ready.isDone()) {
      if (!ready.isCompletedExceptionally()) {
        ctx.stats().readsWarm.increment();
      }
      respond(r, ready, inlineBuffer());
    } else {
      ready.orTimeout(ctx.readDeadline().toMillis(), TimeUnit.MILLISECONDS)
          .whenCompleteAsync((v, e) -> respond(r, ready, ServerContext.replyBuffer()), ctx.replies());
    }
  }

  private CompletableFuture<Void> prepare(NbdRequest r) {
    try {
      return ctx.device().prepare(r.offset(), r.length());
    } catch (RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  private ByteBuffer inlineBuffer() {
    if (ownBuffer == null) {
      ownBuffer = ReadResponder.newBuffer();
    }
    return ownBuffer;
  }

  private void respond(NbdRequest r, CompletableFuture<Void> ready, ByteBuffer buf) {
    try {
      Throwable failure = failureOf(ready);
      if (failure != null) {
        ctx.stats().readsFailed.increment();
        String why = failure instanceof TimeoutException
            ? "data not fetched within " + ctx.readDeadline().toMillis() + " ms"
            : String.valueOf(failure.getMessage());
        ctx.log().warn("readfail:" + why, "READ " + r + " failed: " + why);
        send(r, errorReply(r, Nbd.EIO, why));
        return;
      }
      responder.respond(r, structured, sink, buf);
      ctx.stats().readBytes.add(r.length());
    } catch (ReadResponder.ReadFailedException e) {
      ctx.stats().readsFailed.increment();
      ctx.log().warn("localread:" + e.getMessage(), "READ " + r + ": reading the cache failed: " + e.getMessage());
    } catch (IOException e) {
      LOG.fine(() -> peer() + ": reply to " + r + " not sent: " + e.getMessage());
    } catch (RuntimeException e) {
      LOG.log(Level.WARNING, peer() + ": reply to " + r + " failed", e);
      sink.breakConnection();
    } finally {
      inflight.release();
    }
  }

  private static Throwable failureOf(CompletableFuture<Void> f) {
    try {
      f.join();
      return null;
    } catch (CompletionException e) {
      return e.getCause() != null ? e.getCause() : e;
    } catch (RuntimeException e) {
      return e;
    }
  }

  private void cache(NbdRequest r, int flags) {
    if (flags != 0) {
      invalid(r, "CACHE with unsupported flags 0x" + Integer.toHexString(r.flags()));
      return;
    }
    if (!checkRange(r)) {
      return;
    }
    prepare(r).orTimeout(ctx.readDeadline().toMillis(), TimeUnit.MILLISECONDS)
        .whenCompleteAsync((v, e) -> {
          if (e == null) {
            ok(r);
          } else {
            error(r, Nbd.EIO, "prefetch failed: " + (e.getCause() != null ? e.getCause() : e).getMessage());
          }
        }, ctx.replies());
  }

  private void blockStatus(NbdRequest r, int flags) {
    ctx.stats().blockStatus.increment();
    if (!structured || metaContextId == 0) {
      invalid(r, "BLOCK_STATUS needs base:allocation selected with SET_META_CONTEXT");
      return;
    }
    if ((flags & ~Nbd.CMD_FLAG_REQ_ONE) != 0) {
      invalid(r, "BLOCK_STATUS with unsupported flags 0x" + Integer.toHexString(r.flags()));
      return;
    }
    if (!checkRange(r)) {
      return;
    }
    java.util.List<ReplyCodec.Extent> extents = new java.util.ArrayList<>();
    for (ExportDevice.Run run : ctx.device().runs(r.offset(), r.length())) {
      extents.add(new ReplyCodec.Extent(run.length(), run.zero() ? Nbd.STATE_HOLE | Nbd.STATE_ZERO : 0));
      if ((flags & Nbd.CMD_FLAG_REQ_ONE) != 0) {
        break;
      }
    }
    reply(r, ReplyCodec.blockStatus(r.cookie(), metaContextId, extents, true));
  }

  /** Length 0, or any byte outside the export, is EINVAL. */
  private boolean checkRange(NbdRequest r) {
    if (r.length() == 0) {
      invalid(r, Nbd.commandName(r.type()) + " of zero bytes");
      return false;
    }
    if (!r.within(ctx.device().size())) {
      invalid(r, Nbd.commandName(r.type()) + " " + Long.toUnsignedString(r.offset()) + "+" + r.length()
          + " goes past the end of the export (" + ctx.device().size() + " bytes)");
      return false;
    }
    return true;
  }

  // ---- replies without data ------------------------------------------------------------------------------

  private void ok(NbdRequest r) {
    reply(r, ReplyCodec.simple(0, r.cookie()));
  }

  private void invalid(NbdRequest r, String why) {
    ctx.stats().invalidRequests.increment();
    LOG.fine(() -> peer() + ": " + r + ": " + why);
    error(r, Nbd.EINVAL, why);
  }

  private void error(NbdRequest r, int errno, String why) {
    reply(r, errorReply(r, errno, why));
  }

  /** An error reply: structured (with the reason) when negotiated — mandatory for READ — else simple. */
  private ByteBuffer errorReply(NbdRequest r, int errno, String why) {
    return structured ? ReplyCodec.error(r.cookie(), errno, why) : ReplyCodec.simple(errno, r.cookie());
  }

  /** Sends the final reply of a request and ends it (its in-flight slot is released). */
  private void reply(NbdRequest r, ByteBuffer reply) {
    try {
      send(r, reply);
    } finally {
      inflight.release();
    }
  }

  private void send(NbdRequest r, ByteBuffer reply) {
    try {
      sink.send(reply);
    } catch (IOException e) {
      LOG.fine(() -> peer() + ": reply to " + r + " not sent: " + e.getMessage());
    }
  }

  /** Waits (bounded) for the replies still in progress, so a client's half-close does not lose them. */
  private void drain() {
    int max = ctx.maxInflight();
    try {
      if (inflight.tryAcquire(max, ctx.readDeadline().toMillis() + 5000, TimeUnit.MILLISECONDS)) {
        inflight.release(max);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

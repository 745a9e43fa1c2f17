package dev.lazypull.nbd.server;

import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.nbd.protocol.NbdProtocolException;
import dev.lazypull.nbd.protocol.NbdRequest;
import dev.lazypull.nbd.protocol.OptionCodec;
import dev.lazypull.nbd.protocol.ReplyEncoder;
import dev.lazypull.nbd.protocol.RequestDecoder;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One client connection, on its own thread: the fixed-newstyle handshake (skipped for the kernel
 * client, which starts in transmission), then the request loop: bytes from the transport through a
 * {@link RequestDecoder} (framing), each request to a {@link RequestHandler} (dispatch and replies,
 * written through the {@link ReplySink}).
 *
 * <p>Flow control is here: at most {@link ServerContext#maxInflight()} requests are in progress;
 * with none free the loop stops reading, so a client cannot queue unbounded work (what it sent
 * meanwhile waits in the socket and in one read buffer). Bad requests get error replies and the
 * connection goes on; only a broken stream (bad magic, an oversized WRITE payload, a write failure
 * after a success header) ends it.
 */
final class NbdConnection implements Runnable {
  private static final Logger LOG = Logger.getLogger(NbdConnection.class.getName());

  /**
   * Bytes read from the client at once in transmission (requests, and refused WRITE payloads to
   * skip).
   */
  private static final int READ_BUFFER = 64 << 10;

  private final NbdTransport transport;
  private final ServerContext ctx;
  private final boolean kernel;
  private final ReplySink sink;
  private final Semaphore inflight;
  private final ByteBuffer header = ByteBuffer.allocateDirect(OptionCodec.OPTION_HEADER_SIZE + 16);
  private volatile boolean shuttingDown;

  /**
   * @param kernel the peer is the kernel's nbd driver: no handshake, simple replies only
   */
  NbdConnection(NbdTransport transport, ServerContext ctx, boolean kernel) {
    this.transport = transport;
    this.ctx = ctx;
    this.kernel = kernel;
    this.sink = new ReplySink(transport);
    this.inflight = new Semaphore(ctx.maxInflight());
  }

  String peer() {
    return transport.peer();
  }

  @Override
  public void run() {
    try {
      RequestHandler handler = kernel ? handler(false, 0) : handshake();
      if (handler != null) {
        transmission(handler);
      }
    } catch (EOFException e) {
      LOG.fine(() -> peer() + ": closed by the client");
    } catch (NbdProtocolException e) {
      ctx.stats().protocolErrors.increment();
      ctx.log()
          .warn(
              "proto:" + e.getMessage(),
              peer() + ": protocol violation, disconnecting: " + e.getMessage());
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

  /**
   * How long a reply to this client has been blocked in a write (it stopped reading), 0 if none is.
   */
  long writeBlockedNanos(long now) {
    return sink.writeBlockedNanos(now);
  }

  // ---- handshake
  // -----------------------------------------------------------------------------------------

  /** A request handler for the reply mode and metadata context the client negotiated. */
  private RequestHandler handler(boolean structured, int metaContextId) {
    return new RequestHandler(
        ctx, sink, new ReplyEncoder(structured), metaContextId, inflight::release, peer());
  }

  /**
   * Option haggling; returns the handler for transmission, or null when the connection is to close.
   */
  private RequestHandler handshake() throws IOException, NbdProtocolException {
    Negotiator neg = new Negotiator(ctx.export());
    ScheduledFuture<?> deadline = ctx.scheduleHandshakeDeadline(this);
    try {
      sink.send(neg.greeting());
      neg.clientFlags(readFully(4));
      while (true) {
        OptionCodec.OptionHeader h =
            OptionCodec.decodeHeader(readFully(OptionCodec.OPTION_HEADER_SIZE));
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
            LOG.fine(
                () ->
                    peer()
                        + ": transmission (structured "
                        + neg.structuredReplies()
                        + ", base:allocation "
                        + (neg.metaContextId() != 0)
                        + ")");
            return handler(neg.structuredReplies(), neg.metaContextId());
          default:
            return null;
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

  // ---- transmission
  // --------------------------------------------------------------------------------------

  /**
   * Reads requests until the client disconnects or closes its side: bytes go through the decoder
   * (framing), each whole request takes an in-flight slot (flow control: with none free this loop
   * stops reading) and goes to the handler (dispatch), which frees the slot with the request's
   * final reply.
   */
  private void transmission(RequestHandler handler) throws IOException, NbdProtocolException {
    RequestDecoder decoder =
        new RequestDecoder(ctx.payloads()); // null for a read-only export: skipped
    try {
      transmission(handler, decoder);
    } finally {
      decoder.close(); // a payload still being read goes back
    }
  }

  private void transmission(RequestHandler handler, RequestDecoder decoder)
      throws IOException, NbdProtocolException {
    ByteBuffer in = ByteBuffer.allocateDirect(READ_BUFFER).flip();
    while (true) {
      NbdRequest r = decoder.decode(in);
      if (r == null) { // in is used up
        if (transport.read(in.clear()) < 0) {
          decoder.endOfInput();
          LOG.fine(() -> peer() + ": client closed its side");
          return; // a half-close: in-flight replies still go out (drain)
        }
        in.flip();
        continue;
      }
      ctx.stats().requests.increment();
      if (r.type() == Nbd.CMD_DISC) {
        LOG.fine(() -> peer() + ": DISC");
        return;
      }
      if (r.payload() != null
          && r.type() != Nbd.CMD_WRITE) { // cannot happen: only WRITEs carry payloads
        ctx.payloads().give(r.payload());
      }
      acquire();
      if (shuttingDown) {
        handler.refuse(r, Nbd.ESHUTDOWN, "the server is shutting down");
        continue;
      }
      handler.handle(r);
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

  /**
   * Waits (bounded) for the replies still in progress, so a client's half-close does not lose them.
   */
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

package dev.lazypull.nbd.server;

import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.nbd.protocol.NbdRequest;
import dev.lazypull.nbd.protocol.ReplyCodec;
import dev.lazypull.nbd.protocol.ReplyEncoder;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Answers one connection's decoded requests, as the handler behind a decoder in a Netty pipeline:
 * dispatch by command type, then each command checks the flags it accepts. Type and flags are
 * separate fields, so a flag a client sets anywhere (FUA) never changes which command runs. On a
 * read-only export WRITE, TRIM and WRITE_ZEROES are refused (EPERM) whatever their flags (NO_HOLE,
 * FAST_ZERO); on a writable one ({@link WritableDevice}) they are applied, FUA ones made durable
 * before their reply, and FLUSH makes every write completed before it durable.
 *
 * <p>READs whose bytes are cached are answered on the calling (connection) thread, in order; the
 * others from the reply pool when their fetch completes, out of order. Writes are applied on the
 * calling thread unless they wait for base bytes; FLUSH and FUA syncs run on the reply pool, so the
 * connection keeps reading meanwhile. Every request gets exactly one final reply, after which
 * {@code done} runs (it frees the request's in-flight slot), and a WRITE's payload goes back to the
 * server's buffers once the write is done with it.
 */
final class RequestHandler {
  private static final Logger LOG = Logger.getLogger(RequestHandler.class.getName());

  /**
   * Flags accepted wherever they appear: FUA (the spec asks servers to tolerate it on any command;
   * it matters only for the write commands of a writable export).
   */
  private static final int IGNORED_FLAGS = Nbd.CMD_FLAG_FUA;

  private final ServerContext ctx;
  private final ReplySink sink;
  private final ReplyEncoder replies;
  private final ReadResponder responder;

  /** The device when the export is writable, else null. */
  private final WritableDevice writable;

  private final int metaContextId;
  private final Runnable done;
  private final String peer;
  private ByteBuffer ownBuffer;

  /**
   * @param metaContextId the id the client selected {@code base:allocation} under, 0 if it did not
   * @param done runs once per request, after its final reply
   */
  RequestHandler(
      ServerContext ctx,
      ReplySink sink,
      ReplyEncoder replies,
      int metaContextId,
      Runnable done,
      String peer) {
    this.ctx = ctx;
    this.sink = sink;
    this.replies = replies;
    this.responder = new ReadResponder(ctx.device());
    this.writable = ctx.export().writable() ? (WritableDevice) ctx.device() : null;
    this.metaContextId = metaContextId;
    this.done = done;
    this.peer = peer;
  }

  /**
   * Answers {@code r} (now or, for a READ or CACHE waiting on a fetch, later). Never throws for a
   * request.
   */
  void handle(NbdRequest r) {
    switch (r.type()) {
      case Nbd.CMD_READ -> read(r);
      case Nbd.CMD_WRITE -> write(r);
      case Nbd.CMD_TRIM, Nbd.CMD_WRITE_ZEROES -> zero(r);
      case Nbd.CMD_FLUSH -> flush(r);
      case Nbd.CMD_CACHE -> cache(r);
      case Nbd.CMD_BLOCK_STATUS -> blockStatus(r);
      default -> invalid(r, "unknown command " + r.type());
    }
  }

  /** Answers {@code r} with an error without looking at it (the server is shutting down). */
  void refuse(NbdRequest r, int errno, String why) {
    release(r.payload());
    error(r, errno, why);
  }

  /** The flags of {@code r} that its command does not accept, besides those ignored everywhere. */
  private static int unsupportedFlags(NbdRequest r, int accepted) {
    return r.flags() & ~(accepted | IGNORED_FLAGS);
  }

  private void read(NbdRequest r) {
    ctx.stats().reads.increment();
    if (unsupportedFlags(r, replies.structured() ? Nbd.CMD_FLAG_DF : 0) != 0) {
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
      ready
          .orTimeout(ctx.readDeadline().toMillis(), TimeUnit.MILLISECONDS)
          .whenCompleteAsync(
              (v, e) -> respond(r, ready, ServerContext.replyBuffer()), ctx.replies());
    }
  }

  private CompletableFuture<Void> prepare(NbdRequest r) {
    try {
      return ctx.device().prepare(r.offset(), r.length());
    } catch (RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  /** The connection thread's READ buffer, made on its first warm READ. */
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
        String why =
            failure instanceof TimeoutException
                ? "data not fetched within " + ctx.readDeadline().toMillis() + " ms"
                : String.valueOf(failure.getMessage());
        ctx.log().warn("readfail:" + why, r + " failed: " + why);
        send(r, replies.error(r.cookie(), Nbd.EIO, why));
        return;
      }
      responder.respond(r, replies.structured(), sink, buf);
      ctx.stats().readBytes.add(r.length());
    } catch (ReadResponder.ReadFailedException e) {
      ctx.stats().readsFailed.increment();
      ctx.log()
          .warn("localread:" + e.getMessage(), r + ": reading the cache failed: " + e.getMessage());
    } catch (IOException e) {
      LOG.fine(() -> peer + ": reply to " + r + " not sent: " + e.getMessage());
    } catch (RuntimeException e) {
      LOG.log(Level.WARNING, peer + ": reply to " + r + " failed", e);
      sink.breakConnection();
    } finally {
      done.run();
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

  private void cache(NbdRequest r) {
    if (unsupportedFlags(r, 0) != 0) {
      invalid(r, "CACHE with unsupported flags 0x" + Integer.toHexString(r.flags()));
      return;
    }
    if (!checkRange(r)) {
      return;
    }
    prepare(r)
        .orTimeout(ctx.readDeadline().toMillis(), TimeUnit.MILLISECONDS)
        .whenCompleteAsync(
            (v, e) -> {
              if (e == null) {
                ok(r);
              } else {
                error(
                    r,
                    Nbd.EIO,
                    "prefetch failed: " + (e.getCause() != null ? e.getCause() : e).getMessage());
              }
            },
            ctx.replies());
  }

  // ---- writes
  // --------------------------------------------------------------------------------------------

  private void release(ByteBuffer payload) {
    if (payload != null) {
      ctx.payloads().give(payload);
    }
  }

  /** A write command on a read-only export (its payload, if any, was skipped by the decoder). */
  private void refuseWrite(NbdRequest r) {
    release(r.payload());
    ctx.stats().writesRefused.increment();
    error(r, Nbd.EPERM, "the export is read-only");
  }

  private void write(NbdRequest r) {
    if (writable == null) {
      refuseWrite(r);
      return;
    }
    ctx.stats().writes.increment();
    if (unsupportedFlags(r, 0) != 0) {
      release(r.payload());
      invalid(r, "WRITE with unsupported flags 0x" + Integer.toHexString(r.flags()));
      return;
    }
    if (!checkWriteRange(r)) {
      release(r.payload());
      return;
    }
    if (r.payload() == null
        || r.payload().remaining() != r.length()) { // the decoder's job; never write less
      release(r.payload());
      error(r, Nbd.EIO, "WRITE payload missing");
      return;
    }
    CompletableFuture<Void> applied;
    try {
      applied = writable.write(r.offset(), r.payload().duplicate());
    } catch (RuntimeException e) {
      applied = CompletableFuture.failedFuture(e);
    }
    finish(r, applied, r.payload());
  }

  /**
   * TRIM and WRITE_ZEROES: the range reads as zeros afterwards (NO_HOLE is a hint about allocation
   * only).
   */
  private void zero(NbdRequest r) {
    if (writable == null) {
      refuseWrite(r);
      return;
    }
    ctx.stats().zeroes.increment();
    int accepted = r.type() == Nbd.CMD_WRITE_ZEROES ? Nbd.CMD_FLAG_NO_HOLE : 0;
    if (unsupportedFlags(r, accepted) != 0) {
      invalid(
          r,
          Nbd.commandName(r.type())
              + " with unsupported flags 0x"
              + Integer.toHexString(r.flags()));
      return;
    }
    if (!checkWriteRange(r)) {
      return;
    }
    CompletableFuture<Void> applied;
    try {
      applied = writable.zero(r.offset(), r.length());
    } catch (RuntimeException e) {
      applied = CompletableFuture.failedFuture(e);
    }
    finish(r, applied, null);
  }

  /**
   * Replies once {@code applied} completes (and, for FUA, once it is durable); gives the payload
   * back first.
   */
  private void finish(NbdRequest r, CompletableFuture<Void> applied, ByteBuffer payload) {
    CompletableFuture<Void> f = applied.whenComplete((v, e) -> release(payload));
    if (r.has(Nbd.CMD_FLAG_FUA)) {
      f = f.thenRunAsync(this::flushNow, ctx.replies());
    }
    CompletableFuture<Void> result = f;
    if (result.isDone()) {
      writeReply(r, result);
    } else {
      result.whenCompleteAsync((v, e) -> writeReply(r, result), ctx.replies());
    }
  }

  private void flush(NbdRequest r) {
    ctx.stats().flushes.increment();
    if (writable == null) {
      ok(r); // nothing is ever written, so there is nothing to flush
      return;
    }
    CompletableFuture<Void> f = CompletableFuture.runAsync(this::flushNow, ctx.replies());
    f.whenComplete((v, e) -> writeReply(r, f));
  }

  private void flushNow() {
    try {
      writable.flush();
    } catch (IOException e) {
      throw new CompletionException(e);
    }
  }

  private void writeReply(NbdRequest r, CompletableFuture<Void> f) {
    Throwable failure = failureOf(f);
    if (failure == null) {
      if (r.type() == Nbd.CMD_WRITE) {
        ctx.stats().writeBytes.add(r.length());
      }
      ok(r);
      return;
    }
    ctx.stats().writesFailed.increment();
    String why = String.valueOf(failure.getMessage());
    ctx.log().warn("writefail:" + why, r + " failed: " + why);
    int errno =
        failure instanceof ErrnoException e && e.errno() == Errno.ENOSPC ? Nbd.ENOSPC : Nbd.EIO;
    error(r, errno, why);
  }

  /**
   * Like {@link #checkRange}, but a write past the end is ENOSPC (the spec's answer for writes).
   */
  private boolean checkWriteRange(NbdRequest r) {
    if (r.length() == 0) {
      invalid(r, Nbd.commandName(r.type()) + " of zero bytes");
      return false;
    }
    if (!r.within(ctx.device().size())) {
      ctx.stats().invalidRequests.increment();
      error(
          r,
          Nbd.ENOSPC,
          Nbd.commandName(r.type())
              + " "
              + Long.toUnsignedString(r.offset())
              + "+"
              + r.length()
              + " goes past the end of the export ("
              + ctx.device().size()
              + " bytes)");
      return false;
    }
    return true;
  }

  private void blockStatus(NbdRequest r) {
    ctx.stats().blockStatus.increment();
    if (!replies.structured() || metaContextId == 0) {
      invalid(r, "BLOCK_STATUS needs base:allocation selected with SET_META_CONTEXT");
      return;
    }
    if (unsupportedFlags(r, Nbd.CMD_FLAG_REQ_ONE) != 0) {
      invalid(r, "BLOCK_STATUS with unsupported flags 0x" + Integer.toHexString(r.flags()));
      return;
    }
    if (!checkRange(r)) {
      return;
    }
    boolean one = (r.flags() & Nbd.CMD_FLAG_REQ_ONE) != 0;
    List<ReplyCodec.Extent> extents = new ArrayList<>();
    for (ExportDevice.Run run : ctx.device().runs(r.offset(), r.length())) {
      extents.add(
          new ReplyCodec.Extent(run.length(), run.zero() ? Nbd.STATE_HOLE | Nbd.STATE_ZERO : 0));
      if (one) {
        break;
      }
    }
    reply(r, replies.blockStatus(r.cookie(), metaContextId, extents));
  }

  /** Length 0, or any byte outside the export, is EINVAL. */
  private boolean checkRange(NbdRequest r) {
    if (r.length() == 0) {
      invalid(r, Nbd.commandName(r.type()) + " of zero bytes");
      return false;
    }
    if (!r.within(ctx.device().size())) {
      invalid(
          r,
          Nbd.commandName(r.type())
              + " "
              + Long.toUnsignedString(r.offset())
              + "+"
              + r.length()
              + " goes past the end of the export ("
              + ctx.device().size()
              + " bytes)");
      return false;
    }
    return true;
  }

  // ---- replies without data
  // ------------------------------------------------------------------------------

  private void ok(NbdRequest r) {
    reply(r, replies.ok(r.cookie()));
  }

  private void invalid(NbdRequest r, String why) {
    ctx.stats().invalidRequests.increment();
    LOG.fine(() -> peer + ": " + r + ": " + why);
    error(r, Nbd.EINVAL, why);
  }

  private void error(NbdRequest r, int errno, String why) {
    reply(r, replies.error(r.cookie(), errno, why));
  }

  /** Sends the final reply of a request and ends it. */
  private void reply(NbdRequest r, ByteBuffer reply) {
    try {
      send(r, reply);
    } finally {
      done.run();
    }
  }

  private void send(NbdRequest r, ByteBuffer reply) {
    try {
      sink.send(reply);
    } catch (IOException e) {
      LOG.fine(() -> peer + ": reply to " + r + " not sent: " + e.getMessage());
    }
  }
}

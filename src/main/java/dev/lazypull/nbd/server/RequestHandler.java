package dev.lazypull.nbd.server;

import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.nbd.protocol.NbdRequest;
import dev.lazypull.nbd.protocol.ReplyCodec;
import dev.lazypull.nbd.protocol.ReplyEncoder;
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
 * Answers one connection's decoded requests, as the handler behind a decoder in a Netty pipeline: dispatch by
 * command type, then each command checks the flags it accepts. Type and flags are separate fields, so a flag
 * a client sets anywhere (FUA) never changes which command runs, and a refused command (WRITE, TRIM,
 * WRITE_ZEROES: the export is read-only) is refused whatever its flags (NO_HOLE, FAST_ZERO).
 *
 * <p>READs whose bytes are cached are answered on the calling (connection) thread, in order; the others from
 * the reply pool when their fetch completes, out of order. Every request gets exactly one final reply, after
 * which {@code done} runs (it frees the request's in-flight slot).
 */
final class RequestHandler {
  private static final Logger LOG = Logger.getLogger(RequestHandler.class.getName());
  /** Flags that mean nothing for a read-only export and are ignored wherever they appear. */
  private static final int IGNORED_FLAGS = Nbd.CMD_FLAG_FUA;

  private final ServerContext ctx;
  private final ReplySink sink;
  private final ReplyEncoder replies;
  private final ReadResponder responder;
  private final int metaContextId;
  private final Runnable done;
  private final String peer;
  private ByteBuffer ownBuffer;

  /**
   * @param metaContextId the id the client selected {@code base:allocation} under, 0 if it did not
   * @param done runs once per request, after its final reply
   */
  RequestHandler(ServerContext ctx, ReplySink sink, ReplyEncoder replies, int metaContextId, Runnable done,
      String peer) {
    this.ctx = ctx;
    this.sink = sink;
    this.replies = replies;
    this.responder = new ReadResponder(ctx.device());
    this.metaContextId = metaContextId;
    this.done = done;
    this.peer = peer;
  }

  /** Answers {@code r} (now or, for a READ or CACHE waiting on a fetch, later). Never throws for a request. */
  void handle(NbdRequest r) {
    switch (r.type()) {
      case Nbd.CMD_READ -> read(r);
      case Nbd.CMD_WRITE, Nbd.CMD_TRIM, Nbd.CMD_WRITE_ZEROES -> {
        ctx.stats().writesRefused.increment();
        error(r, Nbd.EPERM, "the export is read-only");
      }
      case Nbd.CMD_FLUSH -> ok(r); // nothing is ever written, so there is nothing to flush
      case Nbd.CMD_CACHE -> cache(r);
      case Nbd.CMD_BLOCK_STATUS -> blockStatus(r);
      default -> invalid(r, "unknown command " + r.type());
    }
  }

  /** Answers {@code r} with an error without looking at it (the server is shutting down). */
  void refuse(NbdRequest r, int errno, String why) {
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
        String why = failure instanceof TimeoutException
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
      ctx.log().warn("localread:" + e.getMessage(), r + ": reading the cache failed: " + e.getMessage());
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
    prepare(r).orTimeout(ctx.readDeadline().toMillis(), TimeUnit.MILLISECONDS)
        .whenCompleteAsync((v, e) -> {
          if (e == null) {
            ok(r);
          } else {
            error(r, Nbd.EIO, "prefetch failed: " + (e.getCause() != null ? e.getCause() : e).getMessage());
          }
        }, ctx.replies());
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
      extents.add(new ReplyCodec.Extent(run.length(), run.zero() ? Nbd.STATE_HOLE | Nbd.STATE_ZERO : 0));
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
      invalid(r, Nbd.commandName(r.type()) + " " + Long.toUnsignedString(r.offset()) + "+" + r.length()
          + " goes past the end of the export (" + ctx.device().size() + " bytes)");
      return false;
    }
    return true;
  }

  // ---- replies without data ------------------------------------------------------------------------------

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

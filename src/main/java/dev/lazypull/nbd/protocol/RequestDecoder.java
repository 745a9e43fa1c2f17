package dev.lazypull.nbd.protocol;

import java.nio.ByteBuffer;

/**
 * Transmission-phase framing, bytes in and whole requests out (what a Netty {@code
 * ByteToMessageDecoder} does for a pipeline): the input may come in any pieces, a request split
 * over many reads or several requests in one. Pure: no I/O, no threads, one instance per
 * connection.
 *
 * <p>Flags and type are separate 16-bit fields ({@link NbdRequest#decode}), so a flag never changes
 * the command.
 *
 * <p>Memory is bounded whatever the input: a request header is assembled in a fixed {@value
 * Nbd#REQUEST_SIZE} byte buffer; a WRITE's payload is either skipped as it arrives, never held (a
 * read-only export: the WRITE is refused once its payload has gone by, which keeps the stream in
 * step), or — with {@link PayloadBuffers} — copied into one buffer taken from them for that
 * request, whose owner bounds what all payloads take together. A WRITE announcing more than {@link
 * Nbd#MAX_PAYLOAD} bytes is a protocol error, as is a bad magic: the stream cannot be brought back
 * in step, so the decoder then refuses all further input.
 */
public final class RequestDecoder {
  private final ByteBuffer header = ByteBuffer.allocate(Nbd.REQUEST_SIZE);
  private final PayloadBuffers buffers;

  /** A WRITE whose payload is being read (or skipped); returned once the payload has gone by. */
  private NbdRequest write;

  /** Where that payload goes, null when it is skipped. */
  private ByteBuffer payload;

  private long payloadLeft;
  private boolean broken;

  /** A decoder that skips WRITE payloads (a read-only export). */
  public RequestDecoder() {
    this(null);
  }

  /**
   * @param buffers where WRITE payloads go; null skips them
   */
  public RequestDecoder(PayloadBuffers buffers) {
    this.buffers = buffers;
  }

  /**
   * Takes bytes from {@code in} up to the end of the next whole request and returns that request (a
   * WRITE with its payload, flipped, when payloads are kept); what follows it stays in {@code in}
   * for the next call. Returns null once {@code in} is used up without completing a request (the
   * part seen so far is kept: feed more).
   *
   * @throws NbdProtocolException the stream is out of step: a bad request magic, or a WRITE payload
   *     larger than {@link Nbd#MAX_PAYLOAD}
   * @throws IllegalStateException after a protocol error
   */
  public NbdRequest decode(ByteBuffer in) throws NbdProtocolException {
    if (broken) {
      throw new IllegalStateException(
          "the request stream is out of step; nothing more can be decoded");
    }
    if (write == null) {
      NbdRequest r = header(in);
      if (r == null || r.type() != Nbd.CMD_WRITE || r.length() == 0) {
        return r;
      }
      if (r.length() > Nbd.MAX_PAYLOAD) {
        broken = true;
        throw new NbdProtocolException(
            "WRITE payload of "
                + r.length()
                + " bytes exceeds the advertised maximum "
                + Nbd.MAX_PAYLOAD);
      }
      write = r;
      payloadLeft = r.length();
      payload = buffers == null ? null : buffers.take((int) r.length());
    }
    int n = (int) Math.min(payloadLeft, in.remaining());
    if (payload != null) {
      payload.put(in.slice().limit(n));
    }
    in.position(in.position() + n);
    payloadLeft -= n;
    if (payloadLeft > 0) {
      return null;
    }
    NbdRequest r = payload == null ? write : write.withPayload(payload.flip());
    write = null;
    payload = null;
    return r;
  }

  private NbdRequest header(ByteBuffer in) throws NbdProtocolException {
    int n = Math.min(header.remaining(), in.remaining());
    header.put(in.slice().limit(n));
    in.position(in.position() + n);
    if (header.hasRemaining()) {
      return null;
    }
    try {
      return NbdRequest.decode(header.flip());
    } catch (NbdProtocolException e) {
      broken = true;
      throw e;
    } finally {
      header.clear();
    }
  }

  /**
   * The input has ended (the client closed its side). Between requests that is a clean end; inside
   * a WRITE payload the client went away mid-request, which leaves nothing to answer, as with any
   * closed connection (the partial payload is given back).
   *
   * @throws NbdProtocolException the input ended inside a request header
   */
  public void endOfInput() throws NbdProtocolException {
    close();
    if (!broken && header.position() > 0) {
      throw new NbdProtocolException("stream ended inside a request header");
    }
  }

  /** Gives back the buffer of a payload still being read; the connection is ending. Idempotent. */
  public void close() {
    if (payload != null) {
      buffers.give(payload);
      payload = null;
    }
    write = null;
  }
}

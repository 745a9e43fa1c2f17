package dev.lazypull.nbd.server;

import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.nbd.protocol.NbdRequest;
import dev.lazypull.nbd.protocol.ReplyCodec;
import dev.lazypull.sys.AlignedBuffers;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Sends the reply to a READ whose range the device has prepared (every byte is local). Data is read
 * with pread into a direct buffer that keeps room in front for the reply header, so header and data
 * leave in one write.
 *
 * <p>Simple replies: the first piece (up to {@link #IO_CHUNK}) is read before the header goes out,
 * so a local read error still gets a clean EIO; reads larger than one piece stream, and an error
 * after the success header can only be a hard disconnect (the spec's rule). Structured replies:
 * zero runs go out as OFFSET_HOLE, data runs as OFFSET_DATA; an error ends the reply with
 * ERROR_OFFSET (after zero-padding a chunk already started), so structured clients never need a
 * disconnect.
 */
final class ReadResponder {
  /** Bytes of data read and sent per piece. */
  static final int IO_CHUNK = 1 << 20;

  /** Room in front of the data for a reply header; keeps the data 4096-aligned. */
  static final int HEADROOM = 4096;

  private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(64 << 10).asReadOnlyBuffer();

  private final ExportDevice device;

  ReadResponder(ExportDevice device) {
    this.device = device;
  }

  /** A buffer for {@link #respond}: one per thread that sends READ replies. */
  static ByteBuffer newBuffer() {
    return AlignedBuffers.allocate(HEADROOM + IO_CHUNK);
  }

  /**
   * Sends the whole reply. Returns when it is sent (possibly as an error reply); throws only when
   * the connection broke (and is then closed).
   */
  void respond(NbdRequest r, boolean structured, ReplySink sink, ByteBuffer buf)
      throws IOException {
    if (structured) {
      structured(r, sink, buf);
    } else {
      simple(r, sink, buf);
    }
  }

  private ByteBuffer fill(ByteBuffer buf, long offset, int n) throws IOException {
    buf.clear().position(HEADROOM).limit(HEADROOM + n);
    device.read(offset, buf);
    return buf;
  }

  /** The message: {@code headerSize} bytes in front of the {@code n} data bytes at HEADROOM. */
  private static ByteBuffer withRoom(ByteBuffer buf, int headerSize, int n) {
    ByteBuffer msg = buf.duplicate();
    msg.limit(HEADROOM + n).position(HEADROOM - headerSize);
    return msg;
  }

  private void simple(NbdRequest r, ReplySink sink, ByteBuffer buf) throws IOException {
    long end = r.offset() + r.length();
    int first = (int) Math.min(r.length(), IO_CHUNK);
    try {
      fill(buf, r.offset(), first);
    } catch (IOException e) {
      sink.send(ReplyCodec.simple(Nbd.EIO, r.cookie()));
      throw new ReadFailedException(e);
    }
    ByteBuffer msg = withRoom(buf, Nbd.SIMPLE_REPLY_SIZE, first);
    ReplyCodec.putSimpleHeader(msg.duplicate(), 0, r.cookie());
    sink.locked(
        out -> {
          out.write(msg);
          for (long pos = r.offset() + first; pos < end; ) {
            int n = (int) Math.min(IO_CHUNK, end - pos);
            // A failure here, after a success header, leaves only a hard disconnect (ReplySink
            // closes on throw).
            out.write(fill(buf, pos, n).position(HEADROOM));
            pos += n;
          }
        });
  }

  private void structured(NbdRequest r, ReplySink sink, ByteBuffer buf) throws IOException {
    boolean df = (r.flags() & Nbd.CMD_FLAG_DF) != 0;
    List<ExportDevice.Run> runs =
        df
            ? List.of(
                new ExportDevice.Run(r.offset(), r.length(), false)) // one chunk, zeros included
            : device.runs(r.offset(), r.length());
    for (int i = 0; i < runs.size(); i++) {
      ExportDevice.Run run = runs.get(i);
      boolean last = i == runs.size() - 1;
      if (run.zero()) {
        sink.send(ReplyCodec.hole(r.cookie(), run.offset(), (int) run.length(), last));
      } else {
        dataChunk(r.cookie(), run, last, sink, buf);
      }
    }
  }

  /**
   * One OFFSET_DATA chunk for a data run; on a read error the final error chunk is sent and this
   * throws.
   */
  private void dataChunk(
      long cookie, ExportDevice.Run run, boolean last, ReplySink sink, ByteBuffer buf)
      throws IOException {
    int total = (int) run.length();
    int first = Math.min(total, IO_CHUNK);
    try {
      fill(buf, run.offset(), first);
    } catch (IOException e) {
      sink.send(ReplyCodec.errorOffset(cookie, Nbd.EIO, e.getMessage(), run.offset()));
      throw new ReadFailedException(e);
    }
    boolean whole = first == total; // all bytes in hand: no error can follow, so it may carry DONE
    ByteBuffer msg = withRoom(buf, ReplyCodec.DATA_CHUNK_PREFIX, first);
    ReplyCodec.putDataHeader(msg.duplicate(), cookie, run.offset(), total, last && whole);
    long[] failedAt = {-1};
    IOException[] failure = {null};
    sink.locked(
        out -> {
          out.write(msg);
          long pos = run.offset() + first;
          long end = run.end();
          while (pos < end) {
            int n = (int) Math.min(IO_CHUNK, end - pos);
            if (failure[0] == null) {
              try {
                fill(buf, pos, n);
              } catch (
                  IOException
                      e) { // the header is out: finish the chunk with zeros, then report the error
                failure[0] = e;
                failedAt[0] = pos;
              }
            }
            if (failure[0] == null) {
              out.write(buf.position(HEADROOM));
            } else {
              writeZeros(out, n);
            }
            pos += n;
          }
        });
    if (failure[0] != null) {
      sink.send(ReplyCodec.errorOffset(cookie, Nbd.EIO, failure[0].getMessage(), failedAt[0]));
      throw new ReadFailedException(failure[0]);
    }
    if (last && !whole) {
      sink.send(ReplyCodec.none(cookie));
    }
  }

  private static void writeZeros(NbdTransport out, long n) throws IOException {
    while (n > 0) {
      int k = (int) Math.min(n, ZEROS.capacity());
      out.write(ZEROS.duplicate().limit(k));
      n -= k;
    }
  }

  /**
   * A READ answered with an error reply because the device could not read its range (the connection
   * lives).
   */
  static final class ReadFailedException extends IOException {
    private static final long serialVersionUID = 1L;

    ReadFailedException(IOException cause) {
      super(cause.getMessage(), cause);
    }
  }
}

package dev.lazypull.testing;

import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.nbd.protocol.NbdRequest;
import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A deliberately low-level NBD client for protocol tests: it sends whatever bytes a test wants (bad
 * magic, unknown commands, oversized lengths) and decodes replies strictly, failing on anything
 * malformed.
 */
public final class NbdTestClient implements Closeable {
  public record OptionReply(int option, int type, byte[] data) {}

  public record SimpleReply(int error, long cookie, byte[] data) {}

  public record Chunk(int flags, int type, long cookie, byte[] payload) {
    public boolean done() {
      return (flags & Nbd.REPLY_FLAG_DONE) != 0;
    }

    public long offset() {
      return ByteBuffer.wrap(payload).getLong(0);
    }

    public int error() {
      return ByteBuffer.wrap(payload).getInt(0);
    }
  }

  /** What GO or EXPORT_NAME told us. */
  public record Export(long size, int flags) {}

  private final SocketChannel ch;

  private NbdTestClient(SocketChannel ch) {
    this.ch = ch;
  }

  public static NbdTestClient connect(Path unixSocket) throws IOException {
    SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
    ch.connect(UnixDomainSocketAddress.of(unixSocket));
    return new NbdTestClient(ch);
  }

  public static NbdTestClient connect(SocketAddress tcp) throws IOException {
    return new NbdTestClient(SocketChannel.open(tcp));
  }

  // ---- raw I/O
  // -------------------------------------------------------------------------------------------

  public void write(ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }

  public void write(byte[] b) throws IOException {
    write(ByteBuffer.wrap(b));
  }

  public ByteBuffer read(int n) throws IOException {
    ByteBuffer b = ByteBuffer.allocate(n);
    while (b.hasRemaining()) {
      if (ch.read(b) < 0) {
        throw new EOFException("server closed after " + b.position() + " of " + n + " bytes");
      }
    }
    return b.flip();
  }

  /** True if the server has closed the connection (after any bytes still pending are drained). */
  public boolean closedByServer() throws IOException {
    ByteBuffer b = ByteBuffer.allocate(4096);
    try {
      while (true) {
        b.clear();
        if (ch.read(b) < 0) {
          return true;
        }
      }
    } catch (IOException e) {
      return true; // reset by peer
    }
  }

  public void shutdownOutput() throws IOException {
    ch.shutdownOutput();
  }

  // ---- handshake
  // -----------------------------------------------------------------------------------------

  /** Reads the greeting, checks it, answers with {@code clientFlags}. */
  public void greeting(int clientFlags) throws IOException {
    ByteBuffer g = read(18);
    if (g.getLong() != Nbd.NBDMAGIC || g.getLong() != Nbd.IHAVEOPT) {
      throw new IOException("bad greeting");
    }
    if ((g.getShort() & Nbd.FLAG_FIXED_NEWSTYLE) == 0) {
      throw new IOException("server is not fixed newstyle");
    }
    write(ByteBuffer.allocate(4).putInt(clientFlags).flip());
  }

  public void option(int option, byte[] payload) throws IOException {
    write(
        ByteBuffer.allocate(16 + payload.length)
            .putLong(Nbd.IHAVEOPT)
            .putInt(option)
            .putInt(payload.length)
            .put(payload)
            .flip());
  }

  public OptionReply optionReply() throws IOException {
    ByteBuffer h = read(20);
    if (h.getLong() != Nbd.OPTION_REPLY_MAGIC) {
      throw new IOException("bad option reply magic");
    }
    int option = h.getInt();
    int type = h.getInt();
    int len = h.getInt();
    if (len < 0 || len > (1 << 20)) {
      throw new IOException("option reply of " + len + " bytes");
    }
    byte[] data = new byte[len];
    read(len).get(data);
    return new OptionReply(option, type, data);
  }

  /** Replies up to and including the final one (ACK or an error). */
  public List<OptionReply> optionReplies() throws IOException {
    List<OptionReply> out = new ArrayList<>();
    while (true) {
      OptionReply r = optionReply();
      out.add(r);
      if (r.type() == Nbd.REP_ACK || r.type() < 0) {
        return out;
      }
    }
  }

  /** An INFO/GO payload asking for {@code infoTypes}. */
  public static byte[] infoPayload(String name, int... infoTypes) {
    byte[] n = name.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b =
        ByteBuffer.allocate(4 + n.length + 2 + 2 * infoTypes.length)
            .putInt(n.length)
            .put(n)
            .putShort((short) infoTypes.length);
    for (int t : infoTypes) {
      b.putShort((short) t);
    }
    return b.array();
  }

  public static byte[] metaPayload(String name, String... queries) {
    ByteBuffer b = ByteBuffer.allocate(8192);
    byte[] n = name.getBytes(StandardCharsets.UTF_8);
    b.putInt(n.length).put(n).putInt(queries.length);
    for (String q : queries) {
      byte[] qb = q.getBytes(StandardCharsets.UTF_8);
      b.putInt(qb.length).put(qb);
    }
    byte[] out = new byte[b.position()];
    b.flip().get(out);
    return out;
  }

  /** The libnbd/qemu sequence: [STRUCTURED_REPLY, SET_META_CONTEXT base:allocation,] GO. */
  public Export go(String name, boolean structured, boolean allocation) throws IOException {
    greeting(Nbd.CLIENT_FLAG_FIXED_NEWSTYLE | Nbd.CLIENT_FLAG_NO_ZEROES);
    if (structured) {
      option(Nbd.OPT_STRUCTURED_REPLY, new byte[0]);
      expectAck(optionReplies());
      if (allocation) {
        option(Nbd.OPT_SET_META_CONTEXT, metaPayload(name, Nbd.BASE_ALLOCATION));
        expectAck(optionReplies());
      }
    }
    option(Nbd.OPT_GO, infoPayload(name));
    List<OptionReply> replies = optionReplies();
    expectAck(replies);
    for (OptionReply r : replies) {
      ByteBuffer d = ByteBuffer.wrap(r.data());
      if (r.type() == Nbd.REP_INFO && d.getShort(0) == Nbd.INFO_EXPORT) {
        return new Export(d.getLong(2), d.getShort(10) & 0xffff);
      }
    }
    throw new IOException("GO without INFO_EXPORT");
  }

  private static void expectAck(List<OptionReply> replies) throws IOException {
    OptionReply last = replies.get(replies.size() - 1);
    if (last.type() != Nbd.REP_ACK) {
      throw new IOException(
          "option "
              + last.option()
              + " answered 0x"
              + Integer.toHexString(last.type())
              + ": "
              + new String(last.data(), StandardCharsets.UTF_8));
    }
  }

  /** The old-style end of haggling. */
  public Export exportName(String name, boolean noZeroes) throws IOException {
    greeting(Nbd.CLIENT_FLAG_FIXED_NEWSTYLE | (noZeroes ? Nbd.CLIENT_FLAG_NO_ZEROES : 0));
    option(Nbd.OPT_EXPORT_NAME, name.getBytes(StandardCharsets.UTF_8));
    ByteBuffer b = read(10 + (noZeroes ? 0 : 124));
    return new Export(b.getLong(), b.getShort() & 0xffff);
  }

  // ---- transmission
  // --------------------------------------------------------------------------------------

  public void request(int type, int flags, long cookie, long offset, long length)
      throws IOException {
    write(new NbdRequest(flags, type, cookie, offset, length).encode());
  }

  /** A simple reply; the data is read only for a successful READ of {@code readLength} bytes. */
  public SimpleReply simpleReply(int readLength) throws IOException {
    ByteBuffer h = read(16);
    if (h.getInt() != Nbd.SIMPLE_REPLY_MAGIC) {
      throw new IOException("not a simple reply");
    }
    int error = h.getInt();
    long cookie = h.getLong();
    byte[] data = new byte[error == 0 ? readLength : 0];
    read(data.length).get(data);
    return new SimpleReply(error, cookie, data);
  }

  public Chunk chunk() throws IOException {
    ByteBuffer h = read(20);
    if (h.getInt() != Nbd.STRUCTURED_REPLY_MAGIC) {
      throw new IOException("not a structured reply chunk");
    }
    int flags = h.getShort() & 0xffff;
    int type = h.getShort() & 0xffff;
    long cookie = h.getLong();
    int len = h.getInt();
    if (len < 0 || len > (Nbd.MAX_PAYLOAD + 64)) {
      throw new IOException("chunk of " + len + " bytes");
    }
    byte[] payload = new byte[len];
    read(len).get(payload);
    return new Chunk(flags, type, cookie, payload);
  }

  /** The chunks of one structured reply (no other request outstanding), up to the DONE chunk. */
  public List<Chunk> structuredReply(long cookie) throws IOException {
    List<Chunk> out = new ArrayList<>();
    while (true) {
      Chunk c = chunk();
      if (c.cookie() != cookie) {
        throw new IOException("chunk for cookie " + c.cookie() + " while reading " + cookie);
      }
      out.add(c);
      if (c.done()) {
        return out;
      }
    }
  }

  /**
   * Reassembles a structured READ reply of {@code [offset, offset+length)}, checking the spec's
   * rules: chunks inside the range, no overlaps, full coverage, no error chunks. Returns the bytes.
   */
  public static byte[] assemble(List<Chunk> chunks, long offset, int length) throws IOException {
    byte[] out = new byte[length];
    boolean[] seen = new boolean[length];
    for (Chunk c : chunks) {
      ByteBuffer p = ByteBuffer.wrap(c.payload());
      switch (c.type()) {
        case Nbd.REPLY_TYPE_NONE -> {
          if (c.payload().length != 0 || !c.done()) {
            throw new IOException("bad NONE chunk");
          }
        }
        case Nbd.REPLY_TYPE_OFFSET_DATA ->
            mark(seen, p.getLong() - offset, c.payload().length - 8, out, p);
        case Nbd.REPLY_TYPE_OFFSET_HOLE -> {
          long at = p.getLong() - offset;
          int size = p.getInt();
          if (size == 0 || c.payload().length != 12) {
            throw new IOException("bad hole chunk");
          }
          mark(seen, at, size, null, null);
        }
        default ->
            throw new IOException(
                "unexpected chunk type 0x"
                    + Integer.toHexString(c.type())
                    + " error "
                    + (c.payload().length >= 4 ? p.getInt(0) : -1));
      }
    }
    for (boolean b : seen) {
      if (!b) {
        throw new IOException("reply does not cover the whole request");
      }
    }
    return out;
  }

  private static void mark(boolean[] seen, long at, int n, byte[] out, ByteBuffer data)
      throws IOException {
    if (at < 0 || at + n > seen.length || n <= 0) {
      throw new IOException("chunk " + at + "+" + n + " outside the request");
    }
    for (int i = 0; i < n; i++) {
      if (seen[(int) at + i]) {
        throw new IOException("chunks overlap at " + (at + i));
      }
      seen[(int) at + i] = true;
    }
    if (out != null) {
      data.get(out, (int) at, n);
    }
  }

  @Override
  public void close() throws IOException {
    ch.close();
  }
}

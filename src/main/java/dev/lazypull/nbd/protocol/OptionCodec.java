package dev.lazypull.nbd.protocol;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The handshake phase's wire format (fixed newstyle): the greeting, client flags, option headers
 * and payloads, and option replies. Pure functions over big-endian ByteBuffers; malformed input is
 * an {@link NbdProtocolException} naming what is wrong.
 */
public final class OptionCodec {
  public static final int GREETING_SIZE = 18;
  public static final int OPTION_HEADER_SIZE = 16;
  public static final int OPTION_REPLY_HEADER_SIZE = 20;

  /** Zero padding after an EXPORT_NAME reply when the client did not ask for NO_ZEROES. */
  public static final int EXPORT_NAME_PADDING = 124;

  private OptionCodec() {}

  /** One option as announced: {@code IHAVEOPT, option, length}; the payload follows. */
  public record OptionHeader(int option, long length) {}

  /** An INFO or GO payload: the export name and the information types asked for. */
  public record InfoRequest(String name, List<Integer> infoTypes) {}

  /** A LIST_META_CONTEXT or SET_META_CONTEXT payload. */
  public record MetaContextRequest(String name, List<String> queries) {}

  /** {@code NBDMAGIC, IHAVEOPT, handshake flags (FIXED_NEWSTYLE | NO_ZEROES)}. */
  public static ByteBuffer greeting() {
    return ByteBuffer.allocate(GREETING_SIZE)
        .putLong(Nbd.NBDMAGIC)
        .putLong(Nbd.IHAVEOPT)
        .putShort((short) (Nbd.FLAG_FIXED_NEWSTYLE | Nbd.FLAG_NO_ZEROES))
        .flip();
  }

  /**
   * The client's 32-bit flags. Anything but FIXED_NEWSTYLE and NO_ZEROES (the two flags we
   * advertise) must end the connection, per the spec.
   */
  public static int decodeClientFlags(ByteBuffer buf) throws NbdProtocolException {
    int flags = buf.getInt();
    int known = Nbd.CLIENT_FLAG_FIXED_NEWSTYLE | Nbd.CLIENT_FLAG_NO_ZEROES;
    if ((flags & ~known) != 0) {
      throw new NbdProtocolException(
          "client sent unknown handshake flags 0x" + Integer.toHexString(flags));
    }
    return flags;
  }

  public static OptionHeader decodeHeader(ByteBuffer buf) throws NbdProtocolException {
    long magic = buf.getLong();
    if (magic != Nbd.IHAVEOPT) {
      throw new NbdProtocolException("bad option magic 0x" + Long.toHexString(magic));
    }
    int option = buf.getInt();
    long length = Integer.toUnsignedLong(buf.getInt());
    return new OptionHeader(option, length);
  }

  /** {@code u32 namelen, name, u16 n, u16 info[n]} — the whole payload, nothing left over. */
  public static InfoRequest decodeInfo(ByteBuffer payload) throws NbdProtocolException {
    try {
      String name = string(payload, lengthPrefix(payload, "export name"), "export name");
      int n = Short.toUnsignedInt(payload.getShort());
      if (payload.remaining() != 2 * n) {
        throw new NbdProtocolException(
            "INFO/GO payload announces "
                + n
                + " information requests but has "
                + payload.remaining()
                + " bytes for them");
      }
      List<Integer> types = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        types.add(Short.toUnsignedInt(payload.getShort()));
      }
      return new InfoRequest(name, types);
    } catch (BufferUnderflowException e) {
      throw new NbdProtocolException("INFO/GO payload is truncated");
    }
  }

  /**
   * {@code u32 namelen, name, u32 nq, {u32 len, query} x nq} — the whole payload, nothing left
   * over.
   */
  public static MetaContextRequest decodeMetaContext(ByteBuffer payload)
      throws NbdProtocolException {
    try {
      String name = string(payload, lengthPrefix(payload, "export name"), "export name");
      long n = Integer.toUnsignedLong(payload.getInt());
      if (n > payload.remaining() / 4) { // each query needs at least its length word
        throw new NbdProtocolException(
            "meta context payload announces "
                + n
                + " queries in "
                + payload.remaining()
                + " bytes");
      }
      List<String> queries = new ArrayList<>((int) n);
      for (int i = 0; i < n; i++) {
        queries.add(string(payload, lengthPrefix(payload, "query"), "query"));
      }
      if (payload.hasRemaining()) {
        throw new NbdProtocolException(
            "meta context payload has " + payload.remaining() + " trailing bytes");
      }
      return new MetaContextRequest(name, queries);
    } catch (BufferUnderflowException e) {
      throw new NbdProtocolException("meta context payload is truncated");
    }
  }

  /** The payload of EXPORT_NAME: the rest of the option is the name. */
  public static String decodeExportName(ByteBuffer payload) throws NbdProtocolException {
    return string(payload, payload.remaining(), "export name");
  }

  private static int lengthPrefix(ByteBuffer buf, String what) throws NbdProtocolException {
    long len = Integer.toUnsignedLong(buf.getInt());
    if (len > Nbd.MAX_STRING) {
      throw new NbdProtocolException(
          what + " of " + len + " bytes (at most " + Nbd.MAX_STRING + ")");
    }
    if (len > buf.remaining()) {
      throw new NbdProtocolException(what + " of " + len + " bytes overruns the payload");
    }
    return (int) len;
  }

  private static String string(ByteBuffer buf, int len, String what) throws NbdProtocolException {
    if (len > Nbd.MAX_STRING) {
      throw new NbdProtocolException(
          what + " of " + len + " bytes (at most " + Nbd.MAX_STRING + ")");
    }
    ByteBuffer slice = buf.slice().limit(len);
    buf.position(buf.position() + len);
    String s;
    try {
      s =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .decode(slice)
              .toString();
    } catch (CharacterCodingException e) {
      throw new NbdProtocolException(what + " is not UTF-8");
    }
    if (s.indexOf('\0') >= 0) {
      throw new NbdProtocolException(what + " contains a NUL character");
    }
    return s;
  }

  /** Checks a string we send: UTF-8 of at most 4096 bytes, no NUL. */
  static void checkString(String s, String what) {
    if (s.indexOf('\0') >= 0 || s.getBytes(StandardCharsets.UTF_8).length > Nbd.MAX_STRING) {
      throw new IllegalArgumentException(
          what + " must be at most " + Nbd.MAX_STRING + " UTF-8 bytes without NUL");
    }
  }

  // ---- replies
  // -------------------------------------------------------------------------------------------

  /** {@code reply magic, option, type, length, data}. */
  public static ByteBuffer reply(int option, int type, ByteBuffer data) {
    ByteBuffer b = ByteBuffer.allocate(OPTION_REPLY_HEADER_SIZE + data.remaining());
    b.putLong(Nbd.OPTION_REPLY_MAGIC)
        .putInt(option)
        .putInt(type)
        .putInt(data.remaining())
        .put(data.duplicate());
    return b.flip();
  }

  public static ByteBuffer ack(int option) {
    return reply(option, Nbd.REP_ACK, ByteBuffer.allocate(0));
  }

  /** An error reply carrying a human-readable message (truncated to the string limit). */
  public static ByteBuffer error(int option, int type, String message) {
    return reply(option, type, ByteBuffer.wrap(boundedUtf8(message, MAX_MESSAGE)));
  }

  /** Longest message we put in an error reply or chunk. */
  static final int MAX_MESSAGE = 1024;

  /**
   * UTF-8 of {@code text} without NULs, cut at a character boundary to at most {@code max} bytes.
   */
  static byte[] boundedUtf8(String text, int max) {
    CharBuffer in = CharBuffer.wrap(text == null ? "" : text.replace('\0', ' '));
    ByteBuffer out = ByteBuffer.allocate(max);
    StandardCharsets.UTF_8
        .newEncoder()
        .onMalformedInput(CodingErrorAction.REPLACE)
        .onUnmappableCharacter(CodingErrorAction.REPLACE)
        .encode(in, out, true);
    return Arrays.copyOf(out.array(), out.position());
  }

  /** {@code NBD_REP_SERVER}: {@code u32 namelen, name}. */
  public static ByteBuffer server(int option, String name) {
    byte[] n = name.getBytes(StandardCharsets.UTF_8);
    return reply(
        option, Nbd.REP_SERVER, ByteBuffer.allocate(4 + n.length).putInt(n.length).put(n).flip());
  }

  public static ByteBuffer infoExport(int option, long size, int transmissionFlags) {
    return reply(
        option,
        Nbd.REP_INFO,
        ByteBuffer.allocate(12)
            .putShort((short) Nbd.INFO_EXPORT)
            .putLong(size)
            .putShort((short) transmissionFlags)
            .flip());
  }

  /** INFO_NAME or INFO_DESCRIPTION: {@code u16 type, text}. */
  public static ByteBuffer infoText(int option, int infoType, String text) {
    byte[] t = text.getBytes(StandardCharsets.UTF_8);
    return reply(
        option,
        Nbd.REP_INFO,
        ByteBuffer.allocate(2 + t.length).putShort((short) infoType).put(t).flip());
  }

  public static ByteBuffer infoBlockSize(int option, int minimum, int preferred, int maximum) {
    return reply(
        option,
        Nbd.REP_INFO,
        ByteBuffer.allocate(14)
            .putShort((short) Nbd.INFO_BLOCK_SIZE)
            .putInt(minimum)
            .putInt(preferred)
            .putInt(maximum)
            .flip());
  }

  /** {@code NBD_REP_META_CONTEXT}: {@code u32 id, name}. */
  public static ByteBuffer metaContext(int option, int id, String name) {
    byte[] n = name.getBytes(StandardCharsets.UTF_8);
    return reply(
        option, Nbd.REP_META_CONTEXT, ByteBuffer.allocate(4 + n.length).putInt(id).put(n).flip());
  }

  /** The EXPORT_NAME answer (no reply header): {@code u64 size, u16 flags[, 124 zero bytes]}. */
  public static ByteBuffer exportNameReply(long size, int transmissionFlags, boolean padding) {
    ByteBuffer b = ByteBuffer.allocate(10 + (padding ? EXPORT_NAME_PADDING : 0));
    b.putLong(size).putShort((short) transmissionFlags);
    return b.position(b.capacity()).flip();
  }
}

package dev.lazypull.nbd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.nbd.protocol.ExportInfo;
import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.nbd.protocol.NbdProtocolException;
import dev.lazypull.testing.NbdTestClient;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The option state machine fed the option sequences real clients send (nbd-protocol.md §3). */
class NegotiatorTest {
  private final ExportInfo export = new ExportInfo("flat", "a test export", 1 << 20);

  /** One option reply as decoded from the bytes the negotiator produced. */
  record Reply(int option, int type, ByteBuffer data) {}

  static List<Reply> decode(Negotiator.Step step) {
    List<Reply> out = new ArrayList<>();
    for (ByteBuffer b : step.replies()) {
      ByteBuffer r = b.duplicate();
      assertEquals(Nbd.OPTION_REPLY_MAGIC, r.getLong());
      int option = r.getInt();
      int type = r.getInt();
      int len = r.getInt();
      assertEquals(len, r.remaining(), "the length covers exactly the data");
      out.add(new Reply(option, type, r.slice()));
    }
    return out;
  }

  static ByteBuffer info(String name, int... types) {
    return ByteBuffer.wrap(NbdTestClient.infoPayload(name, types));
  }

  static ByteBuffer meta(String name, String... queries) {
    return ByteBuffer.wrap(NbdTestClient.metaPayload(name, queries));
  }

  static String text(ByteBuffer b) {
    return StandardCharsets.UTF_8.decode(b.duplicate()).toString();
  }

  @Test
  void nbdinfoSequence() throws Exception {
    Negotiator n = new Negotiator(export);
    n.clientFlags(ByteBuffer.allocate(4).putInt(3).flip());
    List<Reply> r = decode(n.option(Nbd.OPT_STRUCTURED_REPLY, ByteBuffer.allocate(0)));
    assertEquals(List.of(Nbd.REP_ACK), r.stream().map(Reply::type).toList());

    Negotiator.Step s =
        n.option(
            Nbd.OPT_INFO,
            info("flat", Nbd.INFO_BLOCK_SIZE, Nbd.INFO_NAME, Nbd.INFO_DESCRIPTION, 77));
    assertEquals(Negotiator.Next.CONTINUE, s.next());
    r = decode(s);
    assertEquals(
        List.of(Nbd.REP_INFO, Nbd.REP_INFO, Nbd.REP_INFO, Nbd.REP_INFO, Nbd.REP_ACK),
        r.stream().map(Reply::type).toList(),
        "EXPORT, NAME, DESCRIPTION, BLOCK_SIZE, then ACK; 77 is ignored");
    ByteBuffer exp = r.get(0).data();
    assertEquals(Nbd.INFO_EXPORT, exp.getShort());
    assertEquals(1 << 20, exp.getLong());
    int flags = exp.getShort() & 0xffff;
    assertEquals(
        Nbd.TFLAG_HAS_FLAGS
            | Nbd.TFLAG_READ_ONLY
            | Nbd.TFLAG_SEND_FLUSH
            | Nbd.TFLAG_CAN_MULTI_CONN
            | Nbd.TFLAG_SEND_CACHE
            | Nbd.TFLAG_SEND_DF,
        flags);
    assertEquals(Nbd.INFO_NAME, r.get(1).data().getShort(0));
    assertEquals("flat", text(r.get(1).data().position(2)));
    assertEquals("a test export", text(r.get(2).data().position(2)));
    ByteBuffer bs = r.get(3).data();
    assertEquals(Nbd.INFO_BLOCK_SIZE, bs.getShort());
    assertEquals(1, bs.getInt());
    assertEquals(4096, bs.getInt());
    assertEquals(32 << 20, bs.getInt());

    r = decode(n.option(Nbd.OPT_LIST_META_CONTEXT, meta("flat")));
    assertEquals(
        List.of(Nbd.REP_META_CONTEXT, Nbd.REP_ACK),
        r.stream().map(Reply::type).toList(),
        "no query lists every context");
    assertEquals(Nbd.BASE_ALLOCATION, text(r.get(0).data().position(4)));
    assertEquals(0, n.metaContextId(), "listing selects nothing");

    s = n.option(Nbd.OPT_GO, info("flat", Nbd.INFO_BLOCK_SIZE));
    assertEquals(Negotiator.Next.TRANSMIT, s.next());
    assertTrue(n.structuredReplies());
  }

  @Test
  void qemuAndNbdcopySequenceSelectsBaseAllocation() {
    Negotiator n = new Negotiator(export);
    n.option(Nbd.OPT_STRUCTURED_REPLY, ByteBuffer.allocate(0));
    List<Reply> r =
        decode(
            n.option(
                Nbd.OPT_SET_META_CONTEXT, meta("", Nbd.BASE_ALLOCATION, "qemu:dirty-bitmap:x")));
    assertEquals(List.of(Nbd.REP_META_CONTEXT, Nbd.REP_ACK), r.stream().map(Reply::type).toList());
    assertEquals(Negotiator.BASE_ALLOCATION_ID, r.get(0).data().getInt(0));
    assertEquals(Negotiator.BASE_ALLOCATION_ID, n.metaContextId());
    assertEquals(
        Negotiator.Next.TRANSMIT,
        n.option(Nbd.OPT_GO, info("")).next(),
        "the empty name is the default");
    // A later SET with no matching query deselects it again.
    n.option(Nbd.OPT_SET_META_CONTEXT, meta("", "qemu:other"));
    assertEquals(0, n.metaContextId());
  }

  @Test
  void metaContextsNeedStructuredRepliesFirst() {
    Negotiator n = new Negotiator(export);
    List<Reply> r = decode(n.option(Nbd.OPT_SET_META_CONTEXT, meta("", Nbd.BASE_ALLOCATION)));
    assertEquals(Nbd.REP_ERR_INVALID, r.get(0).type());
    assertEquals(0, n.metaContextId());
    assertFalse(
        (n.transmissionFlags() & Nbd.TFLAG_SEND_DF) != 0, "DF only with structured replies");
  }

  @Test
  void errorsKeepTheHandshakeGoing() {
    Negotiator n = new Negotiator(export);
    assertEquals(
        Nbd.REP_ERR_UNSUP,
        decode(n.option(11, ByteBuffer.allocate(8))).get(0).type(),
        "EXTENDED_HEADERS");
    assertEquals(Nbd.REP_ERR_UNSUP, decode(n.option(0x7fff, ByteBuffer.allocate(0))).get(0).type());
    assertEquals(
        Nbd.REP_ERR_UNSUP,
        decode(n.option(Nbd.OPT_STARTTLS, ByteBuffer.allocate(0))).get(0).type());
    Negotiator.Step s = n.option(Nbd.OPT_GO, info("other"));
    assertEquals(Negotiator.Next.CONTINUE, s.next());
    assertEquals(Nbd.REP_ERR_UNKNOWN, decode(s).get(0).type());
    assertEquals(
        Nbd.REP_ERR_INVALID,
        decode(n.option(Nbd.OPT_GO, ByteBuffer.wrap(new byte[] {0, 0, 0, 9}))).get(0).type(),
        "truncated payload");
    assertEquals(
        Nbd.REP_ERR_INVALID, decode(n.option(Nbd.OPT_LIST, ByteBuffer.allocate(1))).get(0).type());
    assertEquals(
        Nbd.REP_ERR_INVALID,
        decode(n.option(Nbd.OPT_STRUCTURED_REPLY, ByteBuffer.allocate(1))).get(0).type());
    assertEquals(Nbd.REP_ERR_TOO_BIG, decode(n.oversized(Nbd.OPT_GO, 1 << 30)).get(0).type());
    assertEquals(
        Negotiator.Next.CLOSE,
        new Negotiator(export).oversized(Nbd.OPT_EXPORT_NAME, 1 << 20).next(),
        "EXPORT_NAME has no error reply");
    List<Reply> list = decode(n.option(Nbd.OPT_LIST, ByteBuffer.allocate(0)));
    assertEquals(List.of(Nbd.REP_SERVER, Nbd.REP_ACK), list.stream().map(Reply::type).toList());
    assertEquals(4, list.get(0).data().getInt(0));
    assertEquals(Negotiator.Next.TRANSMIT, n.option(Nbd.OPT_GO, info("flat")).next());
  }

  @Test
  void exportNameEndsHaggling() throws Exception {
    Negotiator n = new Negotiator(export);
    n.clientFlags(ByteBuffer.allocate(4).putInt(Nbd.CLIENT_FLAG_FIXED_NEWSTYLE).flip());
    Negotiator.Step s =
        n.option(Nbd.OPT_EXPORT_NAME, ByteBuffer.wrap("flat".getBytes(StandardCharsets.UTF_8)));
    assertEquals(Negotiator.Next.TRANSMIT, s.next());
    ByteBuffer b = s.replies().get(0);
    assertEquals(134, b.remaining(), "size, flags and 124 zero bytes without NO_ZEROES");
    assertEquals(1 << 20, b.getLong(0));
    assertEquals(
        Nbd.TFLAG_HAS_FLAGS
            | Nbd.TFLAG_READ_ONLY
            | Nbd.TFLAG_SEND_FLUSH
            | Nbd.TFLAG_CAN_MULTI_CONN
            | Nbd.TFLAG_SEND_CACHE,
        b.getShort(8) & 0xffff);

    Negotiator quiet = new Negotiator(export);
    quiet.clientFlags(ByteBuffer.allocate(4).putInt(3).flip());
    assertEquals(
        10, quiet.option(Nbd.OPT_EXPORT_NAME, ByteBuffer.allocate(0)).replies().get(0).remaining());

    Negotiator unknown = new Negotiator(export);
    s =
        unknown.option(
            Nbd.OPT_EXPORT_NAME, ByteBuffer.wrap("nope".getBytes(StandardCharsets.UTF_8)));
    assertEquals(Negotiator.Next.CLOSE, s.next(), "EXPORT_NAME has no error reply: close");
    assertTrue(s.replies().isEmpty());
    assertThrows(
        NbdProtocolException.class,
        () -> unknown.clientFlags(ByteBuffer.allocate(4).putInt(8).flip()));
  }

  @Test
  void abortAcksAndCloses() {
    Negotiator.Step s = new Negotiator(export).option(Nbd.OPT_ABORT, ByteBuffer.allocate(0));
    assertEquals(Negotiator.Next.CLOSE, s.next());
    assertEquals(Nbd.REP_ACK, decode(s).get(0).type());
  }

  @Test
  void endlessHagglingIsCutOff() {
    Negotiator n = new Negotiator(export);
    for (int i = 0; i < Negotiator.MAX_OPTIONS; i++) {
      assertEquals(Negotiator.Next.CONTINUE, n.option(Nbd.OPT_LIST, ByteBuffer.allocate(0)).next());
    }
    assertEquals(Negotiator.Next.CLOSE, n.option(Nbd.OPT_LIST, ByteBuffer.allocate(0)).next());
  }
}

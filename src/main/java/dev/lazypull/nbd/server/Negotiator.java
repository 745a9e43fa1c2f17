package dev.lazypull.nbd.server;

import dev.lazypull.nbd.protocol.ExportInfo;
import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.nbd.protocol.NbdProtocolException;
import dev.lazypull.nbd.protocol.OptionCodec;
import dev.lazypull.nbd.protocol.OptionCodec.InfoRequest;
import dev.lazypull.nbd.protocol.OptionCodec.MetaContextRequest;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The option-haggling state machine of one connection (fixed newstyle), without I/O: each option
 * and its payload go in, the replies to send and what happens next come out. Malformed payloads are
 * answered with {@code ERR_INVALID}, unknown options with {@code ERR_UNSUP}, unknown names with
 * {@code ERR_UNKNOWN}; only an unknown name in EXPORT_NAME (which has no error reply), ABORT, or a
 * client that will not stop haggling ends the connection.
 */
public final class Negotiator {
  /** The id we give {@code base:allocation} when a client selects it. */
  public static final int BASE_ALLOCATION_ID = 1;

  /** Options one connection may send before it must pick the export. */
  public static final int MAX_OPTIONS = 256;

  public enum Next {
    CONTINUE,
    TRANSMIT,
    CLOSE
  }

  /**
   * @param replies bytes to send, in order
   * @param next what the connection does after sending them
   * @param note why, for the log (null when unremarkable)
   */
  public record Step(List<ByteBuffer> replies, Next next, String note) {
    static Step of(Next next, ByteBuffer... replies) {
      return new Step(List.of(replies), next, null);
    }
  }

  private final ExportInfo export;
  private boolean noZeroes;
  private boolean structured;
  private boolean allocationSelected;
  private int options;

  public Negotiator(ExportInfo export) {
    this.export = export;
  }

  public ByteBuffer greeting() {
    return OptionCodec.greeting();
  }

  /** Takes the client's flags; a flag we did not advertise is a protocol violation. */
  public void clientFlags(ByteBuffer fourBytes) throws NbdProtocolException {
    int flags = OptionCodec.decodeClientFlags(fourBytes);
    noZeroes = (flags & Nbd.CLIENT_FLAG_NO_ZEROES) != 0;
  }

  public boolean structuredReplies() {
    return structured;
  }

  /** The selected metadata context id, or 0 when the client selected none. */
  public int metaContextId() {
    return allocationSelected ? BASE_ALLOCATION_ID : 0;
  }

  /** The transmission flags of the export as negotiated so far. */
  public int transmissionFlags() {
    return export.transmissionFlags(structured);
  }

  /** An option whose payload was too large to read: it was skipped, and is answered ERR_TOO_BIG. */
  public Step oversized(int option, long length) {
    if (++options > MAX_OPTIONS) {
      return tooMany();
    }
    if (option == Nbd.OPT_EXPORT_NAME) { // no error reply exists for it
      return new Step(List.of(), Next.CLOSE, "EXPORT_NAME of " + length + " bytes");
    }
    return new Step(
        List.of(
            OptionCodec.error(
                option,
                Nbd.REP_ERR_TOO_BIG,
                Nbd.optionName(option)
                    + " payload of "
                    + length
                    + " bytes exceeds "
                    + Nbd.MAX_OPTION_PAYLOAD)),
        Next.CONTINUE,
        "oversized option payload");
  }

  /** One option with its whole payload. */
  public Step option(int option, ByteBuffer payload) {
    if (++options > MAX_OPTIONS) {
      return tooMany();
    }
    try {
      return switch (option) {
        case Nbd.OPT_EXPORT_NAME -> exportName(payload);
        case Nbd.OPT_ABORT -> Step.of(Next.CLOSE, OptionCodec.ack(option));
        case Nbd.OPT_LIST ->
            payload.hasRemaining()
                ? invalid(option, "LIST takes no data")
                : Step.of(
                    Next.CONTINUE,
                    OptionCodec.server(option, export.name()),
                    OptionCodec.ack(option));
        case Nbd.OPT_STARTTLS ->
            Step.of(
                Next.CONTINUE,
                OptionCodec.error(
                    option,
                    Nbd.REP_ERR_UNSUP,
                    "TLS is not supported; use a unix socket or loopback"));
        case Nbd.OPT_INFO, Nbd.OPT_GO -> info(option, OptionCodec.decodeInfo(payload));
        case Nbd.OPT_STRUCTURED_REPLY -> structuredReply(option, payload);
        case Nbd.OPT_LIST_META_CONTEXT, Nbd.OPT_SET_META_CONTEXT -> metaContext(option, payload);
        default ->
            Step.of(
                Next.CONTINUE,
                OptionCodec.error(
                    option, Nbd.REP_ERR_UNSUP, Nbd.optionName(option) + " is not supported"));
      };
    } catch (NbdProtocolException e) {
      return invalid(option, e.getMessage());
    }
  }

  private Step tooMany() {
    return new Step(
        List.of(), Next.CLOSE, "more than " + MAX_OPTIONS + " options without choosing an export");
  }

  private static Step invalid(int option, String why) {
    return new Step(
        List.of(OptionCodec.error(option, Nbd.REP_ERR_INVALID, why)), Next.CONTINUE, why);
  }

  private Step exportName(ByteBuffer payload) throws NbdProtocolException {
    String name = OptionCodec.decodeExportName(payload);
    if (!export.matches(name)) {
      return new Step(List.of(), Next.CLOSE, "EXPORT_NAME of unknown export '" + name + "'");
    }
    return Step.of(
        Next.TRANSMIT, OptionCodec.exportNameReply(export.size(), transmissionFlags(), !noZeroes));
  }

  private Step info(int option, InfoRequest req) {
    if (!export.matches(req.name())) {
      return Step.of(
          Next.CONTINUE,
          OptionCodec.error(
              option,
              Nbd.REP_ERR_UNKNOWN,
              "no export named '" + req.name() + "' (this server has '" + export.name() + "')"));
    }
    List<ByteBuffer> out = new ArrayList<>();
    out.add(OptionCodec.infoExport(option, export.size(), transmissionFlags()));
    boolean nameDone = false;
    boolean descriptionDone = false;
    for (int type : req.infoTypes()) { // unknown types are ignored, as the spec asks
      if (type == Nbd.INFO_NAME && !nameDone) {
        out.add(OptionCodec.infoText(option, Nbd.INFO_NAME, export.name()));
        nameDone = true;
      } else if (type == Nbd.INFO_DESCRIPTION && !descriptionDone) {
        out.add(OptionCodec.infoText(option, Nbd.INFO_DESCRIPTION, export.description()));
        descriptionDone = true;
      }
    }
    // Always state the limits, so clients never send a READ larger than we accept.
    out.add(OptionCodec.infoBlockSize(option, Nbd.MIN_BLOCK, Nbd.PREFERRED_BLOCK, Nbd.MAX_PAYLOAD));
    out.add(OptionCodec.ack(option));
    return new Step(out, option == Nbd.OPT_GO ? Next.TRANSMIT : Next.CONTINUE, null);
  }

  private Step structuredReply(int option, ByteBuffer payload) {
    if (payload.hasRemaining()) {
      return invalid(option, "STRUCTURED_REPLY takes no data");
    }
    structured = true;
    return Step.of(Next.CONTINUE, OptionCodec.ack(option));
  }

  private Step metaContext(int option, ByteBuffer payload) throws NbdProtocolException {
    if (!structured) {
      return invalid(option, "negotiate STRUCTURED_REPLY before meta contexts");
    }
    MetaContextRequest req = OptionCodec.decodeMetaContext(payload);
    if (!export.matches(req.name())) {
      return Step.of(
          Next.CONTINUE,
          OptionCodec.error(option, Nbd.REP_ERR_UNKNOWN, "no export named '" + req.name() + "'"));
    }
    boolean list = option == Nbd.OPT_LIST_META_CONTEXT;
    boolean match = list && req.queries().isEmpty(); // listing with no query lists everything
    for (String q : req.queries()) {
      match |= q.equals(Nbd.BASE_ALLOCATION) || (list && q.equals("base:"));
    }
    if (!list) {
      allocationSelected = match; // SET replaces any earlier selection
    }
    List<ByteBuffer> out = new ArrayList<>();
    if (match) {
      out.add(OptionCodec.metaContext(option, list ? 0 : BASE_ALLOCATION_ID, Nbd.BASE_ALLOCATION));
    }
    out.add(OptionCodec.ack(option));
    return new Step(out, Next.CONTINUE, null);
  }
}

package dev.lazypull.nbd.protocol;

/**
 * NBD wire constants (NetworkBlockDevice/nbd doc/proto.md). Every integer on the wire is
 * big-endian.
 */
public final class Nbd {
  private Nbd() {}

  // ---- handshake
  // -----------------------------------------------------------------------------------------
  public static final long NBDMAGIC = 0x4e42444d41474943L;
  public static final long IHAVEOPT = 0x49484156454F5054L;
  public static final long OPTION_REPLY_MAGIC = 0x0003e889045565a9L;

  public static final int FLAG_FIXED_NEWSTYLE = 1;
  public static final int FLAG_NO_ZEROES = 2;
  public static final int CLIENT_FLAG_FIXED_NEWSTYLE = 1;
  public static final int CLIENT_FLAG_NO_ZEROES = 2;

  // ---- options
  // -------------------------------------------------------------------------------------------
  public static final int OPT_EXPORT_NAME = 1;
  public static final int OPT_ABORT = 2;
  public static final int OPT_LIST = 3;
  public static final int OPT_STARTTLS = 5;
  public static final int OPT_INFO = 6;
  public static final int OPT_GO = 7;
  public static final int OPT_STRUCTURED_REPLY = 8;
  public static final int OPT_LIST_META_CONTEXT = 9;
  public static final int OPT_SET_META_CONTEXT = 10;

  public static final int REP_ACK = 1;
  public static final int REP_SERVER = 2;
  public static final int REP_INFO = 3;
  public static final int REP_META_CONTEXT = 4;
  public static final int REP_ERR_UNSUP = 0x80000001;
  public static final int REP_ERR_POLICY = 0x80000002;
  public static final int REP_ERR_INVALID = 0x80000003;
  public static final int REP_ERR_UNKNOWN = 0x80000006;
  public static final int REP_ERR_TOO_BIG = 0x80000009;

  public static final int INFO_EXPORT = 0;
  public static final int INFO_NAME = 1;
  public static final int INFO_DESCRIPTION = 2;
  public static final int INFO_BLOCK_SIZE = 3;

  // ---- transmission flags
  // --------------------------------------------------------------------------------
  public static final int TFLAG_HAS_FLAGS = 1;
  public static final int TFLAG_READ_ONLY = 1 << 1;
  public static final int TFLAG_SEND_FLUSH = 1 << 2;
  public static final int TFLAG_SEND_FUA = 1 << 3;
  public static final int TFLAG_SEND_TRIM = 1 << 5;
  public static final int TFLAG_SEND_WRITE_ZEROES = 1 << 6;
  public static final int TFLAG_SEND_DF = 1 << 7;
  public static final int TFLAG_CAN_MULTI_CONN = 1 << 8;
  public static final int TFLAG_SEND_CACHE = 1 << 10;

  // ---- requests
  // ------------------------------------------------------------------------------------------
  public static final int REQUEST_MAGIC = 0x25609513;
  public static final int REQUEST_SIZE = 28;

  public static final int CMD_READ = 0;
  public static final int CMD_WRITE = 1;
  public static final int CMD_DISC = 2;
  public static final int CMD_FLUSH = 3;
  public static final int CMD_TRIM = 4;
  public static final int CMD_CACHE = 5;
  public static final int CMD_WRITE_ZEROES = 6;
  public static final int CMD_BLOCK_STATUS = 7;

  public static final int CMD_FLAG_FUA = 1;
  public static final int CMD_FLAG_NO_HOLE = 1 << 1;
  public static final int CMD_FLAG_DF = 1 << 2;
  public static final int CMD_FLAG_REQ_ONE = 1 << 3;
  public static final int CMD_FLAG_FAST_ZERO = 1 << 4;

  // ---- replies
  // -------------------------------------------------------------------------------------------
  public static final int SIMPLE_REPLY_MAGIC = 0x67446698;
  public static final int SIMPLE_REPLY_SIZE = 16;
  public static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;
  public static final int STRUCTURED_HEADER_SIZE = 20;

  public static final int REPLY_FLAG_DONE = 1;
  public static final int REPLY_TYPE_NONE = 0;
  public static final int REPLY_TYPE_OFFSET_DATA = 1;
  public static final int REPLY_TYPE_OFFSET_HOLE = 2;
  public static final int REPLY_TYPE_BLOCK_STATUS = 5;
  public static final int REPLY_TYPE_ERROR = 0x8001;
  public static final int REPLY_TYPE_ERROR_OFFSET = 0x8002;

  public static final int STATE_HOLE = 1;
  public static final int STATE_ZERO = 2;

  // ---- errors
  // --------------------------------------------------------------------------------------------
  public static final int EPERM = 1;
  public static final int EIO = 5;
  public static final int ENOMEM = 12;
  public static final int EINVAL = 22;
  public static final int ENOSPC = 28;
  public static final int EOVERFLOW = 75;
  public static final int ENOTSUP = 95;
  public static final int ESHUTDOWN = 108;

  // ---- our limits
  // ----------------------------------------------------------------------------------------
  /** Largest READ (and WRITE payload) accepted; advertised as the maximum block size. */
  public static final int MAX_PAYLOAD = 32 << 20;

  /** Longest export name or query string (the spec's MUST). */
  public static final int MAX_STRING = 4096;

  /** Largest option payload read into memory; bigger ones are skipped and answered ERR_TOO_BIG. */
  public static final int MAX_OPTION_PAYLOAD = 64 << 10;

  /** Advertised block sizes: any alignment, 4 KiB preferred. */
  public static final int MIN_BLOCK = 1;

  public static final int PREFERRED_BLOCK = 4096;

  public static final String BASE_ALLOCATION = "base:allocation";

  public static String optionName(int option) {
    return switch (option) {
      case OPT_EXPORT_NAME -> "EXPORT_NAME";
      case OPT_ABORT -> "ABORT";
      case OPT_LIST -> "LIST";
      case OPT_STARTTLS -> "STARTTLS";
      case OPT_INFO -> "INFO";
      case OPT_GO -> "GO";
      case OPT_STRUCTURED_REPLY -> "STRUCTURED_REPLY";
      case OPT_LIST_META_CONTEXT -> "LIST_META_CONTEXT";
      case OPT_SET_META_CONTEXT -> "SET_META_CONTEXT";
      default -> "option " + Integer.toUnsignedString(option);
    };
  }

  public static String commandName(int type) {
    return switch (type) {
      case CMD_READ -> "READ";
      case CMD_WRITE -> "WRITE";
      case CMD_DISC -> "DISC";
      case CMD_FLUSH -> "FLUSH";
      case CMD_TRIM -> "TRIM";
      case CMD_CACHE -> "CACHE";
      case CMD_WRITE_ZEROES -> "WRITE_ZEROES";
      case CMD_BLOCK_STATUS -> "BLOCK_STATUS";
      default -> "command " + type;
    };
  }
}

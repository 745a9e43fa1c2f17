package dev.lazypull.nbd.protocol;

/**
 * What the handshake tells clients about the one export a server offers.
 *
 * @param name the export's name; the empty name (the default export) selects it too
 * @param description free text for {@code NBD_INFO_DESCRIPTION} and {@code nbdinfo}
 * @param size the export's size in bytes
 * @param writable the export takes WRITE, TRIM, WRITE_ZEROES (with FUA) and FLUSH; else it is
 *     read-only
 * @param multiConn clients may spread requests over several connections: what one writes, another
 *     reads, and a FLUSH on any connection makes every write completed on any connection durable
 */
public record ExportInfo(
    String name, String description, long size, boolean writable, boolean multiConn) {
  public ExportInfo {
    OptionCodec.checkString(name, "export name");
    if (description.length() > 256) {
      description = description.substring(0, 256);
    }
    if (size < 0) {
      throw new IllegalArgumentException("negative export size " + size);
    }
  }

  /** A read-only export (always safe for several connections). */
  public ExportInfo(String name, String description, long size) {
    this(name, description, size, false, true);
  }

  /** Whether a client's requested name selects this export ("" is the default export). */
  public boolean matches(String requested) {
    return requested.isEmpty() || requested.equals(name);
  }

  /**
   * The transmission flags of this export: read-only, or writable with FUA, TRIM and WRITE_ZEROES;
   * FLUSH and CACHE always; multi-connection when it holds; DF only with structured replies.
   */
  public int transmissionFlags(boolean structured) {
    int f = Nbd.TFLAG_HAS_FLAGS | Nbd.TFLAG_SEND_FLUSH | Nbd.TFLAG_SEND_CACHE;
    f |=
        writable
            ? Nbd.TFLAG_SEND_FUA | Nbd.TFLAG_SEND_TRIM | Nbd.TFLAG_SEND_WRITE_ZEROES
            : Nbd.TFLAG_READ_ONLY;
    if (multiConn) {
      f |= Nbd.TFLAG_CAN_MULTI_CONN;
    }
    return structured ? f | Nbd.TFLAG_SEND_DF : f;
  }
}

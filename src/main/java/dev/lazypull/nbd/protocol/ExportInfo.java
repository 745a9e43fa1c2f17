package dev.lazypull.nbd.protocol;

/**
 * What the handshake tells clients about the one export a server offers.
 *
 * @param name the export's name; the empty name (the default export) selects it too
 * @param description free text for {@code NBD_INFO_DESCRIPTION} and {@code nbdinfo}
 * @param size the export's size in bytes
 */
public record ExportInfo(String name, String description, long size) {
  public ExportInfo {
    OptionCodec.checkString(name, "export name");
    if (description.length() > 256) {
      description = description.substring(0, 256);
    }
    if (size < 0) {
      throw new IllegalArgumentException("negative export size " + size);
    }
  }

  /** Whether a client's requested name selects this export ("" is the default export). */
  public boolean matches(String requested) {
    return requested.isEmpty() || requested.equals(name);
  }
}

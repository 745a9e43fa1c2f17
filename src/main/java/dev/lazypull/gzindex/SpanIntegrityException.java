package dev.lazypull.gzindex;

/**
 * Compressed bytes of a span that do not hash to the digest the index recorded for them: the source
 * served wrong bytes (or the index belongs to another layer). None of the span's inflated bytes
 * were used.
 */
public class SpanIntegrityException extends GzipFormatException {
  private static final long serialVersionUID = 1L;

  public SpanIntegrityException(String message) {
    super(message);
  }
}

package dev.lazypull.image;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;

/**
 * The one configured JSON mapper. Input comes from registries, files and sockets, so parsing is
 * bounded: documents are size-checked by callers, and nesting, string and number lengths are capped
 * here.
 */
public final class Json {
  /** Largest manifest, index or config we accept (registries must accept at least 4 MB). */
  public static final int MAX_DOCUMENT_BYTES = 4 << 20;

  public static final ObjectMapper MAPPER =
      JsonMapper.builder(
              JsonFactory.builder()
                  .streamReadConstraints(
                      StreamReadConstraints.builder()
                          .maxNestingDepth(64)
                          .maxStringLength(1 << 20)
                          .maxNumberLength(64)
                          .build())
                  .build())
          .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
          .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS)
          .build();

  private Json() {}

  /** Parses a bounded document; errors say what was being read. */
  public static <T> T parse(byte[] bytes, Class<T> type, String what) throws IOException {
    if (bytes.length > MAX_DOCUMENT_BYTES) {
      throw new IOException(
          what + ": document of " + bytes.length + " bytes exceeds " + MAX_DOCUMENT_BYTES);
    }
    try {
      return MAPPER.readValue(bytes, type);
    } catch (IOException | IllegalArgumentException e) {
      throw new IOException(what + ": malformed JSON: " + firstLine(e.getMessage()), e);
    }
  }

  /**
   * Canonical bytes for documents we write (sorted keys, no whitespace): same input, same digest.
   */
  public static byte[] write(Object value) {
    try {
      return MAPPER.writeValueAsBytes(value);
    } catch (IOException e) {
      throw new IllegalStateException("cannot serialise " + value.getClass().getSimpleName(), e);
    }
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }
}

package dev.lazypull.registry;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.image.Json;
import java.nio.charset.StandardCharsets;

/**
 * The distribution error body {@code {"errors":[{"code","message","detail"}]}}, read leniently:
 * bodies may be in any format, so anything unparseable becomes a short printable excerpt. Only the
 * first error is kept.
 */
record ErrorBody(String code, String message) {
  static final int MAX_BYTES = 16 << 10;
  private static final int EXCERPT = 200;

  static ErrorBody parse(byte[] body) {
    if (body == null || body.length == 0) {
      return new ErrorBody(null, null);
    }
    try {
      JsonNode root = Json.MAPPER.readTree(body);
      JsonNode first = root.path("errors").path(0);
      if (first.isObject()) {
        String code = first.path("code").isTextual() ? first.path("code").asText() : null;
        String msg = first.path("message").isTextual() ? first.path("message").asText() : null;
        return new ErrorBody(printable(code), printable(msg));
      }
    } catch (Exception e) {
      // not JSON: fall through to the excerpt
    }
    return new ErrorBody(
        null,
        printable(new String(body, 0, Math.min(body.length, EXCERPT * 2), StandardCharsets.UTF_8)));
  }

  /** " CODE: message", or "" when the body said nothing useful. */
  String suffix() {
    StringBuilder b = new StringBuilder();
    if (code != null) {
      b.append(' ').append(code);
    }
    if (message != null && !message.isEmpty()) {
      b.append(code != null ? ": " : " ").append(message);
    }
    return b.toString();
  }

  /** Control characters out, length capped: a hostile body cannot forge log lines or flood them. */
  static String printable(String s) {
    if (s == null) {
      return null;
    }
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < s.length() && b.length() < EXCERPT; i++) {
      char c = s.charAt(i);
      b.append(c < 0x20 || c == 0x7f ? ' ' : c);
    }
    return b.toString().trim();
  }
}

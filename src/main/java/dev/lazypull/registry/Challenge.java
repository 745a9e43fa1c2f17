package dev.lazypull.registry;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One authentication challenge from a {@code WWW-Authenticate} header (RFC 7235 §4.1): a scheme and
 * either auth-params or a token68. Parameter names and the scheme are case-insensitive and stored
 * lowercase; values keep their case. {@link #parse} is a pure codec: it never throws, and malformed
 * tails are dropped.
 *
 * <p>Registries send {@code Bearer realm="…",service="…",scope="repository:a/b:pull,push"}: quoted
 * values contain commas, so a header cannot be split on commas. One header may also carry several
 * challenges ({@code Basic realm="x", Bearer realm="y"}); a challenge starts wherever a token is
 * not followed by '='.
 */
record Challenge(String scheme, Map<String, String> params, String token68) {
  public Challenge {
    scheme = scheme.toLowerCase(Locale.ROOT);
    params = Map.copyOf(params);
  }

  public String param(String name) {
    return params.get(name.toLowerCase(Locale.ROOT));
  }

  public boolean isBearer() {
    return scheme.equals("bearer");
  }

  public boolean isBasic() {
    return scheme.equals("basic");
  }

  /** Parses every challenge of every given header value, in order. */
  public static List<Challenge> parseAll(List<String> headerValues) {
    List<Challenge> out = new ArrayList<>();
    for (String h : headerValues) {
      out.addAll(parse(h));
    }
    return out;
  }

  public static List<Challenge> parse(String header) {
    return new Parser(header == null ? "" : header).challenges();
  }

  private static final class Parser {
    private final String s;
    private int pos;

    Parser(String s) {
      this.s = s;
    }

    List<Challenge> challenges() {
      List<Challenge> out = new ArrayList<>();
      while (true) {
        skipWhile(" \t,");
        if (pos >= s.length()) {
          return out;
        }
        String scheme = token();
        if (scheme.isEmpty()) { // garbage: drop the rest rather than guess
          return out;
        }
        Map<String, String> params = new LinkedHashMap<>();
        String token68 = null;
        skipWhile(" \t");
        int t68 = token68End();
        if (t68 > 0) {
          token68 = s.substring(pos, t68);
          pos = t68;
        } else {
          while (paramFollows()) {
            String name = token();
            skipWhile(" \t");
            pos++; // '='
            skipWhile(" \t");
            String value = pos < s.length() && s.charAt(pos) == '"' ? quoted() : token();
            params.putIfAbsent(name.toLowerCase(Locale.ROOT), value);
            skipWhile(" \t");
            if (pos < s.length() && s.charAt(pos) == ',') {
              pos++;
              skipWhile(" \t,");
            } else {
              break;
            }
          }
        }
        out.add(new Challenge(scheme, params, token68));
        if (pos < s.length() && s.charAt(pos) != ',' && !isTchar(s.charAt(pos))) {
          pos++; // a stray character: skip it so the loop always advances
        }
      }
    }

    /**
     * True if the input at pos is {@code token BWS "="} (an auth-param), not the start of a new
     * challenge.
     */
    private boolean paramFollows() {
      int save = pos;
      try {
        if (token().isEmpty()) {
          return false;
        }
        skipWhile(" \t");
        return pos < s.length() && s.charAt(pos) == '=';
      } finally {
        pos = save;
      }
    }

    /** End of a token68 at pos (1*tchar68 *"=" followed by end or ','), or -1. */
    private int token68End() {
      int i = pos;
      while (i < s.length() && isToken68Char(s.charAt(i))) {
        i++;
      }
      if (i == pos) {
        return -1;
      }
      while (i < s.length() && s.charAt(i) == '=') {
        i++;
      }
      int end = i;
      while (i < s.length() && (s.charAt(i) == ' ' || s.charAt(i) == '\t')) {
        i++;
      }
      // "name=value" (something after the '=') is an auth-param, not a token68.
      boolean atEnd = i >= s.length() || s.charAt(i) == ',';
      return atEnd ? end : -1;
    }

    private String token() {
      int start = pos;
      while (pos < s.length() && isTchar(s.charAt(pos))) {
        pos++;
      }
      return s.substring(start, pos);
    }

    private String quoted() {
      StringBuilder b = new StringBuilder();
      pos++; // opening quote
      while (pos < s.length()) {
        char c = s.charAt(pos++);
        if (c == '"') {
          return b.toString();
        }
        if (c == '\\' && pos < s.length()) {
          c = s.charAt(pos++);
        }
        b.append(c);
      }
      return b.toString(); // unterminated: take what is there
    }

    private void skipWhile(String chars) {
      while (pos < s.length() && chars.indexOf(s.charAt(pos)) >= 0) {
        pos++;
      }
    }

    private static boolean isTchar(char c) {
      return c < 128 && (Character.isLetterOrDigit(c) || "!#$%&'*+-.^_`|~".indexOf(c) >= 0);
    }

    private static boolean isToken68Char(char c) {
      return c < 128 && (Character.isLetterOrDigit(c) || "-._~+/".indexOf(c) >= 0);
    }
  }
}

package dev.lazypull.snapshotter;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * containerd's filter syntax over snapshots ({@code Walk}/{@code List}): a filter is selectors
 * joined by {@code ,} (all must hold); a selector is a field path ({@code name}, {@code parent},
 * {@code kind}, {@code labels.KEY} — path parts may be double-quoted: {@code
 * labels."containerd.io/snapshot.ref"}), alone (the field is present) or with {@code ==}, {@code
 * !=} or {@code ~=} (regular expression) and a value, bare or double-quoted with Go escapes. A
 * snapshot is listed when it matches any of the filters given.
 */
final class Filters {
  private Filters() {}

  /** The snapshots matching any of {@code filters} (every snapshot when there are none). */
  static Predicate<SnapshotInfo> any(List<String> filters) throws SnapshotException {
    if (filters.isEmpty()) {
      return i -> true;
    }
    List<Predicate<SnapshotInfo>> ps = new ArrayList<>();
    for (String f : filters) {
      ps.add(parse(f));
    }
    return i -> ps.stream().anyMatch(p -> p.test(i));
  }

  /** One filter: every selector in it must hold. */
  static Predicate<SnapshotInfo> parse(String filter) throws SnapshotException {
    Scanner s = new Scanner(filter);
    List<Predicate<SnapshotInfo>> all = new ArrayList<>();
    if (filter.isBlank()) {
      return i -> true;
    }
    while (true) {
      all.add(s.selector());
      s.skipSpaces();
      if (s.atEnd()) {
        break;
      }
      s.expect(',');
    }
    return i -> all.stream().allMatch(p -> p.test(i));
  }

  /** The value of a field path on a snapshot, or null when it has none. */
  static String field(SnapshotInfo i, List<String> path) {
    switch (path.get(0)) {
      case "name":
        return path.size() == 1 ? i.name() : null;
      case "parent":
        return path.size() == 1 ? i.parent() : null;
      case "kind":
        return path.size() == 1 ? i.kind().text() : null;
      case "labels":
        return path.size() < 2
            ? null
            : i.labels().get(String.join(".", path.subList(1, path.size())));
      default:
        return null;
    }
  }

  private static final class Scanner {
    private final String text;
    private int pos;

    Scanner(String text) {
      this.text = text;
    }

    boolean atEnd() {
      return pos >= text.length();
    }

    void skipSpaces() {
      while (!atEnd() && Character.isWhitespace(text.charAt(pos))) {
        pos++;
      }
    }

    void expect(char c) throws SnapshotException {
      if (atEnd() || text.charAt(pos) != c) {
        throw error("expected '" + c + "'");
      }
      pos++;
    }

    SnapshotException error(String what) {
      return SnapshotException.invalidArgument(
          "filter " + quote(text) + " at " + pos + ": " + what);
    }

    Predicate<SnapshotInfo> selector() throws SnapshotException {
      skipSpaces();
      List<String> path = new ArrayList<>();
      path.add(part());
      while (!atEnd() && text.charAt(pos) == '.') {
        pos++;
        path.add(part());
      }
      skipSpaces();
      if (atEnd() || text.charAt(pos) == ',') {
        return i -> field(i, path) != null;
      }
      String op =
          text.startsWith("==", pos)
              ? "=="
              : text.startsWith("!=", pos) ? "!=" : text.startsWith("~=", pos) ? "~=" : null;
      if (op == null) {
        throw error("expected an operator (==, != or ~=)");
      }
      pos += 2;
      skipSpaces();
      String value = value();
      switch (op) {
        case "==":
          return i -> value.equals(field(i, path));
        case "!=":
          return i -> !value.equals(field(i, path));
        default:
          Pattern re;
          try {
            re = Pattern.compile(value);
          } catch (PatternSyntaxException e) {
            throw error("bad regular expression: " + e.getDescription());
          }
          return i -> {
            String v = field(i, path);
            return v != null && re.matcher(v).find();
          };
      }
    }

    /** A field path part: quoted, or letters, digits, '_', '-' and '/'. */
    String part() throws SnapshotException {
      if (!atEnd() && text.charAt(pos) == '"') {
        return quoted();
      }
      int start = pos;
      while (!atEnd()
          && (Character.isLetterOrDigit(text.charAt(pos))
              || "_-/".indexOf(text.charAt(pos)) >= 0)) {
        pos++;
      }
      if (pos == start) {
        throw error("expected a field name");
      }
      return text.substring(start, pos);
    }

    /** A value: quoted, or everything up to the next ',' (trailing spaces dropped). */
    String value() throws SnapshotException {
      if (!atEnd() && text.charAt(pos) == '"') {
        return quoted();
      }
      int start = pos;
      while (!atEnd() && text.charAt(pos) != ',') {
        pos++;
      }
      String v = text.substring(start, pos).strip();
      if (v.isEmpty()) {
        throw error("expected a value");
      }
      return v;
    }

    /** A double-quoted string with Go's escapes (\" \\ \n \t \r \xNN \\uNNNN). */
    String quoted() throws SnapshotException {
      pos++;
      StringBuilder b = new StringBuilder();
      while (true) {
        if (atEnd()) {
          throw error("unterminated quoted string");
        }
        char c = text.charAt(pos++);
        if (c == '"') {
          return b.toString();
        }
        if (c != '\\') {
          b.append(c);
          continue;
        }
        if (atEnd()) {
          throw error("unterminated escape");
        }
        char e = text.charAt(pos++);
        switch (e) {
          case 'n' -> b.append('\n');
          case 't' -> b.append('\t');
          case 'r' -> b.append('\r');
          case '"', '\\', '/' -> b.append(e);
          case 'x' -> b.append((char) hex(2));
          case 'u' -> b.append((char) hex(4));
          default -> throw error("unknown escape \\" + e);
        }
      }
    }

    private int hex(int digits) throws SnapshotException {
      if (pos + digits > text.length()) {
        throw error("short escape");
      }
      try {
        int v = Integer.parseInt(text.substring(pos, pos + digits), 16);
        pos += digits;
        return v;
      } catch (NumberFormatException e) {
        throw error("bad escape digits");
      }
    }
  }

  static String quote(String s) {
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
  }
}

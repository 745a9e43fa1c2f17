package dev.lazypull.registry;

/**
 * A {@code Content-Range: bytes FIRST-LAST/TOTAL} response header (RFC 9110 §14.4), {@code total}
 * -1 for {@code *}. {@link #parse} returns null for anything else (multipart, other units, {@code
 * bytes *}/N, garbage), so the caller treats it as a range mismatch.
 */
public record ContentRange(long first, long last, long total) {
  public static ContentRange parse(String header) {
    if (header == null) {
      return null;
    }
    String s = header.trim();
    if (!s.regionMatches(true, 0, "bytes ", 0, 6)) {
      return null;
    }
    s = s.substring(6).trim();
    int dash = s.indexOf('-');
    int slash = s.indexOf('/');
    if (dash <= 0 || slash <= dash + 1) {
      return null;
    }
    try {
      long first = Long.parseLong(s.substring(0, dash).trim());
      long last = Long.parseLong(s.substring(dash + 1, slash).trim());
      String t = s.substring(slash + 1).trim();
      long total = t.equals("*") ? -1 : Long.parseLong(t);
      if (first < 0 || last < first || (total >= 0 && last >= total)) {
        return null;
      }
      return new ContentRange(first, last, total);
    } catch (NumberFormatException e) {
      return null;
    }
  }

  public long length() {
    return last - first + 1;
  }

  @Override
  public String toString() {
    return "bytes " + first + "-" + last + "/" + (total < 0 ? "*" : Long.toString(total));
  }
}

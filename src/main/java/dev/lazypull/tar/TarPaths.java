package dev.lazypull.tar;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** Normalizes member paths: relative to the archive root, never escaping it. */
public final class TarPaths {
  public static final int MAX_NAME = 255;

  private TarPaths() {}

  /**
   * Splits a raw path into components, dropping a leading "/", empty components and "."; rejects
   * ".." (an entry that could escape the root, or whose meaning depends on symlinks) and components
   * over 255 bytes.
   */
  public static List<byte[]> split(byte[] raw) throws TarFormatException {
    List<byte[]> out = new ArrayList<>();
    int start = 0;
    for (int i = 0; i <= raw.length; i++) {
      if (i == raw.length || raw[i] == '/') {
        int len = i - start;
        if (len == 2 && raw[start] == '.' && raw[start + 1] == '.') {
          throw new TarFormatException(
              "entry '" + show(raw) + "' contains '..' (it could escape the image root)");
        }
        if (len > MAX_NAME) {
          throw new TarFormatException(
              "entry '" + show(raw) + "' has a name of " + len + " bytes (EROFS allows 255)");
        }
        if (len > 0 && !(len == 1 && raw[start] == '.')) {
          byte[] c = new byte[len];
          System.arraycopy(raw, start, c, 0, len);
          out.add(c);
        }
        start = i + 1;
      } else if (raw[i] == 0) {
        throw new TarFormatException("entry path contains a NUL byte");
      }
    }
    return out;
  }

  public static byte[] join(List<byte[]> parts) {
    int len = Math.max(0, parts.size() - 1);
    for (byte[] p : parts) {
      len += p.length;
    }
    byte[] out = new byte[len];
    int at = 0;
    for (int i = 0; i < parts.size(); i++) {
      if (i > 0) {
        out[at++] = '/';
      }
      System.arraycopy(parts.get(i), 0, out, at, parts.get(i).length);
      at += parts.get(i).length;
    }
    return out;
  }

  public static String show(byte[] raw) {
    return new String(raw, StandardCharsets.UTF_8);
  }

  public static String show(List<byte[]> parts) {
    return parts.isEmpty() ? "." : show(join(parts));
  }
}

package dev.lazypull.testing;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Hand-made tar streams for malformed-input tests: ustar headers with correct (or deliberately
 * wrong) checksums.
 */
public final class TarBytes {
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();

  public TarBytes entry(byte[] name, char type, byte[] data, byte[] link) {
    byte[] h = header(name, type, data.length, link);
    out.writeBytes(h);
    out.writeBytes(data);
    out.writeBytes(new byte[(512 - data.length % 512) % 512]);
    return this;
  }

  public TarBytes entry(String name, char type, String data) {
    return entry(
        name.getBytes(StandardCharsets.UTF_8),
        type,
        data.getBytes(StandardCharsets.UTF_8),
        new byte[0]);
  }

  public TarBytes symlink(String name, String target) {
    return entry(
        name.getBytes(StandardCharsets.UTF_8),
        '2',
        new byte[0],
        target.getBytes(StandardCharsets.UTF_8));
  }

  /** A pax extended header with these records, applying to the next entry. */
  public TarBytes pax(String... keyValues) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < keyValues.length; i += 2) {
      String rec = " " + keyValues[i] + "=" + keyValues[i + 1] + "\n";
      int len = rec.getBytes(StandardCharsets.UTF_8).length;
      int total = len + Integer.toString(len).length();
      if (Integer.toString(total).length() != Integer.toString(len).length()) {
        total++;
      }
      sb.append(total).append(rec);
    }
    return entry(
        "PaxHeader".getBytes(StandardCharsets.UTF_8),
        'x',
        sb.toString().getBytes(StandardCharsets.UTF_8),
        new byte[0]);
  }

  public TarBytes raw(byte[] bytes) {
    out.writeBytes(bytes);
    return this;
  }

  public byte[] end() {
    out.writeBytes(new byte[1024]);
    return out.toByteArray();
  }

  public byte[] bytes() {
    return out.toByteArray();
  }

  public static byte[] header(byte[] name, char type, long size, byte[] link) {
    byte[] h = new byte[512];
    System.arraycopy(name, 0, h, 0, Math.min(100, name.length));
    octal(h, 100, 8, 0644);
    octal(h, 108, 8, 0);
    octal(h, 116, 8, 0);
    octal(h, 124, 12, size);
    octal(h, 136, 12, 1_600_000_000L);
    h[156] = (byte) type;
    System.arraycopy(link, 0, h, 157, Math.min(100, link.length));
    System.arraycopy("ustar\0".getBytes(StandardCharsets.US_ASCII), 0, h, 257, 6);
    h[263] = '0';
    h[264] = '0';
    for (int i = 148; i < 156; i++) {
      h[i] = ' ';
    }
    long sum = 0;
    for (byte b : h) {
      sum += b & 0xff;
    }
    octal(h, 148, 7, sum);
    return h;
  }

  private static void octal(byte[] h, int off, int len, long v) {
    String s = Long.toOctalString(v);
    s = "0".repeat(Math.max(0, len - 1 - s.length())) + s;
    byte[] b = s.getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(b, 0, h, off, len - 1);
    h[off + len - 1] = 0;
  }
}

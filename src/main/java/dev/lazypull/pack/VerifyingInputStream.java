package dev.lazypull.pack;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.util.HexFormat;

/**
 * Passes a blob's bytes through and fails at its end if the size or sha256 differ from the
 * descriptor.
 */
public final class VerifyingInputStream extends FilterInputStream {
  private final Descriptor expected;
  private final String what;
  private final MessageDigest md = Digest.sha256();
  private long count;
  private boolean checked;

  public VerifyingInputStream(InputStream in, Descriptor expected, String what) {
    super(in);
    this.expected = expected;
    this.what = what;
  }

  @Override
  public int read() throws IOException {
    byte[] one = new byte[1];
    return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    int n = in.read(b, off, len);
    if (n < 0) {
      check();
      return -1;
    }
    md.update(b, off, n);
    count += n;
    if (count > expected.size()) {
      throw new IOException(
          what
              + ": blob "
              + expected.digest()
              + " is longer than its "
              + expected.size()
              + " bytes");
    }
    return n;
  }

  @Override
  public long skip(long n) throws IOException {
    byte[] buf = new byte[8192];
    long done = 0;
    while (done < n) {
      int r = read(buf, 0, (int) Math.min(buf.length, n - done));
      if (r < 0) {
        break;
      }
      done += r;
    }
    return done;
  }

  private void check() throws IOException {
    if (checked) {
      return;
    }
    checked = true;
    if (count != expected.size()) {
      throw new IOException(
          what
              + ": blob "
              + expected.digest()
              + " has "
              + count
              + " bytes, expected "
              + expected.size());
    }
    Digest actual = new Digest(HexFormat.of().formatHex(md.digest()));
    if (!actual.equals(expected.digest())) {
      throw new IOException(what + ": blob " + expected.digest() + " has digest " + actual);
    }
  }
}

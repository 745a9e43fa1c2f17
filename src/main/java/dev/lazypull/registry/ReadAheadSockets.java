package dev.lazypull.registry;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.Objects;
import javax.net.SocketFactory;

/**
 * Sockets whose input is read from the kernel in large pieces. OkHttp reads a socket 8 KiB at a
 * time (one okio segment per {@code read}): one system call per 8 KiB of a blob, 65,536 per 512
 * MiB, and on a paravirtualized guest each one costs more than copying its bytes. Reading ahead
 * into a {@link #READ_AHEAD} buffer takes whatever the socket holds in one call (tens to hundreds
 * of KiB on a fast link) and serves okio's reads from memory. TLS sockets are layered over these,
 * so they read ahead the same way. Timeouts are the socket's own: a read that blocks is still one
 * read of the underlying socket.
 */
final class ReadAheadSockets extends SocketFactory {
  /** Most bytes one system call reads. */
  static final int READ_AHEAD = 256 << 10;

  @Override
  public Socket createSocket() {
    return new ReadAheadSocket();
  }

  @Override
  public Socket createSocket(String host, int port) throws IOException {
    return connected(null, new InetSocketAddress(host, port));
  }

  @Override
  public Socket createSocket(String host, int port, InetAddress localHost, int localPort)
      throws IOException {
    return connected(
        new InetSocketAddress(localHost, localPort), new InetSocketAddress(host, port));
  }

  @Override
  public Socket createSocket(InetAddress host, int port) throws IOException {
    return connected(null, new InetSocketAddress(host, port));
  }

  @Override
  public Socket createSocket(InetAddress address, int port, InetAddress localAddress, int localPort)
      throws IOException {
    return connected(
        new InetSocketAddress(localAddress, localPort), new InetSocketAddress(address, port));
  }

  /** A new socket bound to {@code local} (unless null) and connected to {@code remote}. */
  private Socket connected(InetSocketAddress local, InetSocketAddress remote) throws IOException {
    Socket s = createSocket();
    try {
      if (local != null) {
        s.bind(local);
      }
      s.connect(remote);
      return s;
    } catch (IOException | RuntimeException e) {
      s.close();
      throw e;
    }
  }

  /** A plain socket whose one input stream reads ahead. */
  private static final class ReadAheadSocket extends Socket {
    private InputStream in;

    @Override
    public synchronized InputStream getInputStream() throws IOException {
      InputStream raw = super.getInputStream(); // throws once closed or not connected
      if (in == null) {
        in = new ReadAheadInputStream(raw, READ_AHEAD);
      }
      return in;
    }
  }

  /**
   * Buffers what one read of the underlying stream returns. Unlike {@link
   * java.io.BufferedInputStream} it never asks the socket for {@code available()} (a system call)
   * and never blocks for more once it has bytes to return.
   */
  static final class ReadAheadInputStream extends FilterInputStream {
    private final byte[] buf;
    private int pos;
    private int limit;

    ReadAheadInputStream(InputStream in, int size) {
      super(in);
      this.buf = new byte[size];
    }

    @Override
    public int read() throws IOException {
      if (pos == limit && !fill()) {
        return -1;
      }
      return buf[pos++] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      Objects.checkFromIndexSize(off, len, b.length);
      if (len == 0) {
        return 0;
      }
      if (pos == limit) {
        if (len >= buf.length) {
          return in.read(b, off, len); // as large as ours: no point copying twice
        }
        if (!fill()) {
          return -1;
        }
      }
      int n = Math.min(len, limit - pos);
      System.arraycopy(buf, pos, b, off, n);
      pos += n;
      return n;
    }

    /** One read of the underlying stream into the empty buffer; false at its end. */
    private boolean fill() throws IOException {
      int n = in.read(buf, 0, buf.length);
      if (n <= 0) {
        return false;
      }
      pos = 0;
      limit = n;
      return true;
    }

    @Override
    public long skip(long n) throws IOException {
      if (n <= 0) {
        return 0;
      }
      if (pos < limit) {
        int k = (int) Math.min(n, limit - pos);
        pos += k;
        return k;
      }
      return in.skip(n);
    }

    @Override
    public int available() throws IOException {
      return pos < limit ? limit - pos : in.available();
    }

    @Override
    public boolean markSupported() {
      return false;
    }
  }
}

package dev.lazypull.nbd.server;

import java.io.IOException;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

/** An accepted TCP or unix-domain socket (blocking mode). */
final class ChannelTransport implements NbdTransport {
  private final SocketChannel ch;
  private final String peer;

  ChannelTransport(SocketChannel ch, String peer) throws IOException {
    this.ch = ch;
    this.peer = peer;
    if (ch.supportedOptions().contains(StandardSocketOptions.TCP_NODELAY)) {
      ch.setOption(
          StandardSocketOptions.TCP_NODELAY,
          true); // replies are whole messages; never wait for more
    }
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    return ch.read(dst);
  }

  @Override
  public void write(ByteBuffer... srcs) throws IOException {
    long left = 0;
    for (ByteBuffer b : srcs) {
      left += b.remaining();
    }
    while (left > 0) {
      left -= ch.write(srcs);
    }
  }

  @Override
  public void close() {
    try {
      ch.close();
    } catch (IOException e) {
      // closing is best effort: the peer may be gone already
    }
  }

  @Override
  public String peer() {
    return peer;
  }
}

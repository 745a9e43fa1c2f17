package dev.lazypull.nbd.server;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The byte stream one NBD connection runs over: a socket accepted by the server, or one end of a
 * socketpair whose other end the kernel's nbd driver holds. Reads come from one thread; writes are
 * serialised by the caller; {@link #close} may come from any thread and wakes a blocked reader.
 */
interface NbdTransport {
  /** Reads into dst's remaining space; returns the count, or -1 at end of stream. */
  int read(ByteBuffer dst) throws IOException;

  /** Writes every remaining byte of {@code srcs}, in order. */
  void write(ByteBuffer... srcs) throws IOException;

  /** Closes both directions (idempotent). */
  void close();

  /** Who is on the other end, for logs. */
  String peer();
}

package dev.lazypull.nbd.server;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The write side of one connection. Replies from the connection's thread and from the reply pool
 * are serialised here whole (a simple reply with its data, or one structured chunk), so replies to
 * different requests never interleave inside a message. Once a write fails the connection is
 * broken: it is closed (which also stops its reader) and later writes fail at once.
 */
final class ReplySink {
  /** Work done while holding the write side, e.g. streaming a large READ piece by piece. */
  interface Locked {
    void run(NbdTransport out) throws IOException;
  }

  private final NbdTransport transport;
  private final Object lock = new Object();
  private volatile boolean broken;

  /**
   * System.nanoTime() when the write in progress began, 0 when idle: a client that stops reading
   * shows here.
   */
  private volatile long writingSince;

  ReplySink(NbdTransport transport) {
    this.transport = transport;
  }

  void send(ByteBuffer... message) throws IOException {
    locked(out -> out.write(message));
  }

  void locked(Locked work) throws IOException {
    synchronized (lock) {
      if (broken) {
        throw new IOException("connection to " + transport.peer() + " is closed");
      }
      writingSince = System.nanoTime() | 1; // never 0 while writing
      try {
        work.run(transport);
      } catch (IOException | RuntimeException e) {
        breakConnection();
        throw e;
      } finally {
        writingSince = 0;
      }
    }
  }

  /** Hard disconnect: nothing more can be sent on this connection. */
  void breakConnection() {
    broken = true;
    transport.close();
  }

  /** Nanoseconds the current write has been blocked, 0 when not writing. */
  long writeBlockedNanos(long now) {
    long since = writingSince;
    return since == 0 ? 0 : now - since;
  }
}

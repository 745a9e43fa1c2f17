package dev.lazypull.blob;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ReadableByteChannel;
import java.util.logging.Logger;

/**
 * Reads {@code [offset, offset+length)} through a channel that can be reopened at any position:
 * when a read fails part-way (connection reset, read timeout, premature end), the rest is requested
 * again from where the bytes stopped, at most {@code maxResumes} times. Errors that are not
 * transient — a subclass of {@code permanent} — propagate at once. Bytes already handed out are
 * never repeated or skipped.
 */
public final class ResumingChannel implements ReadableByteChannel, BlobSource.Served {
  private static final Logger LOG = Logger.getLogger(ResumingChannel.class.getName());

  /** Opens exactly {@code length} bytes at {@code offset}. */
  public interface Opener {
    ReadableByteChannel open(long offset, long length) throws IOException;
  }

  private final Opener opener;
  private final int maxResumes;
  private final Class<? extends IOException> permanent;
  private final String what;
  private ReadableByteChannel current;
  private long position;
  private long remaining;
  private int resumes;
  private boolean open = true;

  /** Whether any part of the bytes came from a mirror, and the last endpoint that served some. */
  private boolean fromMirror;

  private String servedBy;

  public ResumingChannel(
      ReadableByteChannel first,
      Opener opener,
      long offset,
      long length,
      int maxResumes,
      Class<? extends IOException> permanent,
      String what) {
    this.current = first;
    this.opener = opener;
    this.position = offset;
    this.remaining = length;
    this.maxResumes = maxResumes;
    this.permanent = permanent;
    this.what = what;
    noteServer(first);
  }

  private void noteServer(ReadableByteChannel ch) {
    if (ch instanceof BlobSource.Served s) {
      fromMirror |= s.fromMirror();
      servedBy = s.servedBy();
    }
  }

  @Override
  public boolean fromMirror() {
    return fromMirror;
  }

  @Override
  public String servedBy() {
    return servedBy != null ? servedBy : what;
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    if (!open) { // never reopen a closed stream: that would be a new request nobody reads to the
      // end
      throw new ClosedChannelException();
    }
    if (remaining == 0) {
      return -1;
    }
    if (!dst.hasRemaining()) {
      return 0;
    }
    while (true) {
      if (current == null) {
        current = opener.open(position, remaining);
        noteServer(current);
      }
      int n;
      try {
        n = current.read(dst);
        if (n < 0) {
          throw new EOFException(what + ": stream ended with " + remaining + " bytes to go");
        }
      } catch (IOException e) {
        if (permanent.isInstance(e)
            || resumes >= maxResumes
            || Thread.currentThread().isInterrupted()) {
          throw e;
        }
        resumes++;
        long at = position;
        LOG.fine(() -> what + ": read failed at " + at + " (" + e + "); resuming");
        closeQuietly();
        continue;
      }
      position += n;
      remaining -= n;
      return n;
    }
  }

  private void closeQuietly() {
    try {
      current.close();
    } catch (IOException e) {
      // already failing; the reopen decides
    }
    current = null;
  }

  @Override
  public boolean isOpen() {
    return open;
  }

  @Override
  public void close() throws IOException {
    open = false;
    if (current != null) {
      current.close();
      current = null;
    }
  }
}

package dev.lazypull.fanotify;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.function.IntPredicate;

/**
 * A fanotify pre-content group: the kernel side of the fanotify front end. Cache files are marked
 * for {@code FAN_PRE_ACCESS}; each access to a marked file waits until the event it raised is
 * answered. Production code uses {@link KernelFanotifyGroup}; unit tests drive the front end with a
 * fake that writes real files and checks every answer.
 *
 * <p>Contract for every event read with a non-negative fd: fill its range through {@link #pwrite}
 * (never through a descriptor of one's own: that raises an event of its own), then {@link #respond}
 * exactly once, then {@link #closeEventFd} — {@link #finish} does the last two. Responses are
 * matched by fd number, so an event fd must stay open until its answer is written (a closed number
 * can be reused by the next event).
 *
 * <p>Closing the group's last descriptor makes the kernel allow every pending event: unfilled
 * ranges then read as zeros. Keep the descriptor alive (systemd's fd store, or a keeper process)
 * for as long as marks exist.
 */
public interface FanotifyGroup extends Closeable {
  /** Marks {@code file} (a regular file) for pre-content events. */
  void mark(Path file) throws IOException;

  /**
   * Removes the mark of {@code file}: later accesses raise no event. Events it already raised —
   * queued or read — are not withdrawn and still need their answers.
   */
  void unmark(Path file) throws IOException;

  /** Removes every inode mark of the group (same caveat as {@link #unmark}). */
  void flushMarks() throws IOException;

  /** Waits up to {@code timeoutMillis} for events to read; false on timeout. */
  boolean awaitEvents(int timeoutMillis) throws IOException;

  /**
   * Reads as many whole pending events as fit into {@code buf} (capacity at least {@link
   * FanotifyDecoder#READ_BUFFER_SIZE} is advised), from position 0. Returns the byte count, 0 when
   * none is pending. The buffer's position and limit are left alone.
   */
  int read(ByteBuffer buf) throws IOException;

  /** {@link #read} and {@link FanotifyDecoder#decode}: the pending events, empty when none. */
  default List<FanotifyMessage> readBatch(ByteBuffer buf) throws IOException {
    int n = read(buf);
    return n == 0 ? List.of() : FanotifyDecoder.decode(buf.duplicate().clear(), n);
  }

  /**
   * Answers the permission event that carried {@code eventFd} ({@link FanotifyResponse#ALLOW},
   * {@code DENY}, {@link FanotifyResponse#denyErrno}). ENOENT when no event waits under that
   * number.
   */
  void respond(int eventFd, int response) throws IOException;

  /**
   * Like {@link #respond}, but says false instead of failing when no event waits under {@code
   * eventFd}.
   */
  boolean respondIfPending(int eventFd, int response) throws IOException;

  /**
   * Answers every event still waiting under an fd number in [{@code from}, {@code to}) except those
   * {@code keep} selects — each number as often as events wait under it — and returns how many were
   * answered. This is how a restarted daemon fails the events its dead predecessor read but never
   * answered (the kernel matches answers by number, and nothing lists them): it must run before the
   * first new event is read, or a new event's fd could share a number with an old one and its
   * answer would go to the old event.
   */
  default int answerWaiting(int from, int to, int response, IntPredicate keep) throws IOException {
    int answered = 0;
    for (int fd = Math.max(0, from); fd < to; fd++) {
      if (keep.test(fd)) {
        continue;
      }
      while (respondIfPending(fd, response)) {
        answered++;
      }
    }
    return answered;
  }

  /** The identity (device, inode) of the file an event's fd is open on. */
  default FileKey identify(int eventFd) throws IOException {
    return FileKey.ofFd(eventFd);
  }

  /**
   * Writes {@code buf}'s remaining bytes at {@code offset} of the event's file, through the event's
   * fd.
   */
  long pwrite(int eventFd, ByteBuffer buf, long offset) throws IOException;

  /** Closes an event fd (after its answer). */
  void closeEventFd(int eventFd);

  /** Answers the event and closes its fd, even when the answer fails. */
  default void finish(int eventFd, int response) throws IOException {
    try {
      respond(eventFd, response);
    } finally {
      closeEventFd(eventFd);
    }
  }

  /** Closes the group: the kernel allows whatever is still pending (see the class comment). */
  @Override
  void close();
}

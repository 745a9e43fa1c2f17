package dev.lazypull.fanotify;

import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.OpenFileLimit;
import java.util.logging.Logger;

/**
 * Bounds the descriptor numbers this process can be handed, so a successor knows every number an
 * unanswered event of ours can carry. The kernel matches a fanotify response by the event's fd
 * number and nothing lists the events a dead listener read and never answered: a restarted daemon
 * answers every number its predecessor could have had ({@link FanotifyGroup#answerWaiting}). A JVM
 * raises its soft {@code RLIMIT_NOFILE} to the hard limit ({@code -XX:+MaxFDLimit}), which systemd
 * sets to 524288 and some hosts to a billion: too many numbers to sweep. The daemon lowers its soft
 * limit to {@link #MAX} (an fd it cannot get fails that one read of the group, whose events stay
 * queued), and a successor sweeps {@code [0, MAX)} — about 0.2 s.
 */
public final class EventFdLimit {
  private static final Logger LOG = Logger.getLogger(EventFdLimit.class.getName());

  /**
   * The highest descriptor count a fanotify daemon keeps open: far above what it needs (an fd per
   * event in flight).
   */
  public static final int MAX = 65536;

  private EventFdLimit() {}

  /**
   * Lowers this process's soft {@code RLIMIT_NOFILE} to {@link #MAX} when it is higher (the hard
   * limit stays).
   *
   * @return the soft limit now in force, or -1 when it cannot be read
   */
  public static long cap() {
    long soft;
    try {
      soft = OpenFileLimit.soft();
    } catch (ErrnoException e) {
      LOG.warning(
          "cannot read RLIMIT_NOFILE ("
              + e.getMessage()
              + "); a restarted daemon may not find every event "
              + "this one leaves unanswered above fd "
              + MAX);
      return -1;
    }
    if (soft >= 0 && soft <= MAX) { // RLIM_INFINITY is -1 as a signed long
      return soft;
    }
    try {
      OpenFileLimit.setSoft(MAX);
    } catch (ErrnoException e) {
      LOG.warning(
          "cannot lower RLIMIT_NOFILE to "
              + MAX
              + " ("
              + e.getMessage()
              + "); a restarted daemon may not "
              + "find every event this one leaves unanswered above that number");
      return soft;
    }
    LOG.fine(
        () ->
            "RLIMIT_NOFILE soft limit lowered from "
                + soft
                + " to "
                + MAX
                + " (event fd numbers stay below"
                + " it, for a successor's sweep)");
    return MAX;
  }
}

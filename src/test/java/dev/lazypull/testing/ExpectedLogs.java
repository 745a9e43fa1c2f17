package dev.lazypull.testing;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Filter;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Warnings a test provokes on purpose (bad input, a broken source, a refused peer): a test declares
 * each one with {@link #expect}; a matching record is then kept off the console and counted, and
 * once the test ends it fails unless every declared record was logged — so the error path is
 * asserted, not just tolerated. Every record nobody declared is printed as usual: unexpected
 * problems stay visible.
 *
 * <p>Registered for every test by JUnit's extension auto-detection
 * (src/test/resources/META-INF/services and junit-platform.properties). It filters the root
 * logger's handlers, so a test that reconfigures logging in-process (the daemon commands call
 * {@code LogManager.reset()}) prints its expected records again.
 */
public final class ExpectedLogs implements AfterEachCallback {
  /**
   * How long the end of a test waits for a declared record still to come from a background thread.
   */
  private static final Duration LATE = Duration.ofSeconds(10);

  private static final Formatter TEXT = new SimpleFormatter();
  private static final List<Expectation> ACTIVE = new CopyOnWriteArrayList<>();

  /** One declared record: its level, and a fragment of its message. */
  public static final class Expectation {
    private final Level level;
    private final String fragment;
    private final boolean required;
    private final AtomicInteger seen = new AtomicInteger();

    private Expectation(Level level, String fragment, boolean required) {
      this.level = level;
      this.fragment = fragment;
      this.required = required;
    }

    boolean matches(LogRecord r) {
      return r.getLevel().equals(level) && TEXT.formatMessage(r).contains(fragment);
    }

    /** How many matching records were logged (and kept off the console) so far. */
    public int seen() {
      return seen.get();
    }

    @Override
    public String toString() {
      return level + " containing \"" + fragment + "\"";
    }
  }

  /**
   * Declares that the running test logs a record at exactly {@code level} whose message contains
   * {@code fragment}, at least once, on any thread, from now until the test ends.
   */
  public static Expectation expect(Level level, String fragment) {
    return declare(new Expectation(level, fragment, true));
  }

  /**
   * Declares a record the running test may provoke or not, depending on a race it does not control
   * (a READ in flight when its object closes): kept off the console like an expected one, but not
   * required.
   */
  public static Expectation allowWarning(String fragment) {
    return declare(new Expectation(Level.WARNING, fragment, false));
  }

  /**
   * Like {@link #allowWarning}, at SEVERE (a mock server reporting a client's protocol probe, say).
   */
  public static Expectation allowSevere(String fragment) {
    return declare(new Expectation(Level.SEVERE, fragment, false));
  }

  private static Expectation declare(Expectation e) {
    if (e.level.intValue() < Level.INFO.intValue()) {
      throw new IllegalArgumentException(
          "only records the console prints can be declared: " + e.level);
    }
    ACTIVE.add(e);
    for (Handler h : Logger.getLogger("").getHandlers()) {
      Filter f = h.getFilter();
      if (!(f instanceof Silencer)) {
        h.setFilter(new Silencer(f));
      }
    }
    return e;
  }

  /** {@link #expect} at WARNING. */
  public static Expectation warning(String fragment) {
    return expect(Level.WARNING, fragment);
  }

  /** {@link #expect} at SEVERE. */
  public static Expectation severe(String fragment) {
    return expect(Level.SEVERE, fragment);
  }

  /** Keeps declared records off a handler, and counts them. */
  private static final class Silencer implements Filter {
    private final Filter next;

    Silencer(Filter next) {
      this.next = next;
    }

    @Override
    public boolean isLoggable(LogRecord r) {
      for (Expectation e : ACTIVE) {
        if (e.matches(r)) {
          e.seen.incrementAndGet();
          return false;
        }
      }
      return next == null || next.isLoggable(r);
    }
  }

  @Override
  public void afterEach(ExtensionContext context) throws Exception {
    if (ACTIVE.isEmpty()) {
      return;
    }
    try {
      List<Expectation> missing = new ArrayList<>();
      for (Expectation e : ACTIVE) {
        if (!e.required) {
          continue;
        }
        try {
          Await.until(() -> e.seen() > 0, LATE, "the expected log record " + e);
        } catch (AssertionError timedOut) {
          missing.add(e);
        }
      }
      if (!missing.isEmpty()) {
        throw new AssertionError("expected log records were not logged: " + missing);
      }
    } finally {
      ACTIVE.clear();
      for (Handler h : Logger.getLogger("").getHandlers()) {
        if (h.getFilter() instanceof Silencer s) {
          h.setFilter(s.next);
        }
      }
    }
  }
}

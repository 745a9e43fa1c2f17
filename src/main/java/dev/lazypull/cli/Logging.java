package dev.lazypull.cli;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogManager;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/** One-line JUL logging to stderr; journald stores and rotates it under systemd. */
final class Logging {
  private Logging() {}

  static void configure(String level) {
    LogManager.getLogManager().reset();
    Level lvl = parse(level);
    Handler h = new ConsoleHandler();
    h.setFormatter(new OneLine());
    h.setLevel(lvl);
    Logger root = Logger.getLogger("");
    root.addHandler(h);
    root.setLevel(Level.WARNING); // libraries (OkHttp, JNA) only when something is wrong
    Logger.getLogger("dev.lazypull").setLevel(lvl);
  }

  static Level parse(String level) {
    switch (level.toLowerCase(Locale.ROOT)) {
      case "trace":
        return Level.FINEST;
      case "debug":
        return Level.FINE;
      case "info":
        return Level.INFO;
      case "warn":
      case "warning":
        return Level.WARNING;
      case "error":
        return Level.SEVERE;
      default:
        throw new IllegalArgumentException(
            "log level must be error, warn, info, debug or trace: " + level);
    }
  }

  /** {@code 12:34:56.789 WARNING RequestHandler: message}. */
  static final class OneLine extends Formatter {
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss.SSS");

    @Override
    public String format(LogRecord r) {
      String name = r.getLoggerName() == null ? "" : r.getLoggerName();
      String shortName = name.substring(name.lastIndexOf('.') + 1);
      StringBuilder b =
          new StringBuilder(128)
              .append(LocalTime.now().format(TIME))
              .append(' ')
              .append(r.getLevel().getName())
              .append(' ')
              .append(shortName)
              .append(": ")
              .append(formatMessage(r))
              .append('\n');
      if (r.getThrown() != null && Logger.getLogger("dev.lazypull").isLoggable(Level.FINE)) {
        StringWriter sw = new StringWriter();
        r.getThrown().printStackTrace(new PrintWriter(sw));
        b.append(sw);
      }
      return b.toString();
    }
  }
}

package dev.lazypull.control;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.image.Json;
import dev.lazypull.sys.DaemonThreads;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.logging.Level;
import java.util.logging.Logger;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;

/**
 * The control API: JSON objects, one per line, over a unix stream socket (protocol in
 * docs/control-api.md). Only root (or the daemon's own user) may talk to it: the socket file is
 * mode 0600 in a 0700 directory, and every connection's peer credentials (SO_PEERCRED) are checked.
 */
public final class ControlServer implements Closeable {
  private static final Logger LOG = Logger.getLogger(ControlServer.class.getName());

  /** Longest request line accepted. */
  public static final int MAX_REQUEST_BYTES = 1 << 20;

  private static final int MAX_CONNECTIONS = 32;

  /**
   * Handles one request; returns the response fields (without "ok"). Exceptions become
   * {"ok":false}.
   */
  public interface Handler {
    ObjectNode handle(String op, JsonNode request) throws Exception;
  }

  private final Path socketPath;
  private final Handler handler;
  private final ServerSocketChannel server;
  private final ExecutorService connections =
      Executors.newCachedThreadPool(DaemonThreads.named("lazypull-control"));
  private final Semaphore slots = new Semaphore(MAX_CONNECTIONS);
  private final String ownUser = System.getProperty("user.name");
  private volatile boolean closed;

  private ControlServer(Path socketPath, Handler handler, ServerSocketChannel server) {
    this.socketPath = socketPath;
    this.handler = handler;
    this.server = server;
  }

  /**
   * Binds the socket (replacing a stale one; refusing if another daemon answers on it) and starts
   * serving.
   */
  public static ControlServer start(Path socketPath, Handler handler) throws IOException {
    Path dir = socketPath.toAbsolutePath().getParent();
    Files.createDirectories(dir);
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
    if (Files.exists(socketPath)) {
      try (SocketChannel probe = SocketChannel.open(UnixDomainSocketAddress.of(socketPath))) {
        throw new IOException("another daemon is already listening on " + socketPath);
      } catch (IOException e) {
        if (e.getMessage() != null && e.getMessage().startsWith("another daemon")) {
          throw e;
        }
        Files.delete(socketPath); // stale socket from a daemon that died
      }
    }
    ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    server.bind(UnixDomainSocketAddress.of(socketPath));
    Files.setPosixFilePermissions(socketPath, PosixFilePermissions.fromString("rw-------"));
    ControlServer s = new ControlServer(socketPath, handler, server);
    Thread t = new Thread(s::acceptLoop, "lazypull-control-accept");
    t.setDaemon(true);
    t.start();
    return s;
  }

  public Path socketPath() {
    return socketPath;
  }

  private void acceptLoop() {
    while (!closed) {
      try {
        SocketChannel ch = server.accept();
        if (!slots.tryAcquire()) {
          reply(ch, error("too many control connections"));
          ch.close();
          continue;
        }
        try {
          connections.execute(
              () -> {
                try (ch) {
                  serve(ch);
                } catch (IOException e) {
                  LOG.fine("control connection: " + e.getMessage());
                } finally {
                  slots.release();
                }
              });
        } catch (
            RejectedExecutionException
                e) { // close() stopped the pool after this accept: drop the peer
          slots.release();
          ch.close();
        }
      } catch (IOException e) {
        if (!closed) {
          LOG.warning("control socket accept: " + e.getMessage());
        }
      }
    }
  }

  private void serve(SocketChannel ch) throws IOException {
    UnixDomainPrincipal peer = ch.getOption(ExtendedSocketOptions.SO_PEERCRED);
    if (!allowed(peer.user())) {
      LOG.warning("control socket: refused a connection from user " + peer.user().getName());
      reply(ch, error("permission denied: the control API is for root only"));
      return;
    }
    LineReader lines = new LineReader(ch);
    byte[] line;
    while ((line = lines.next()) != null) {
      reply(ch, dispatch(line));
    }
  }

  private boolean allowed(UserPrincipal user) {
    String name = user.getName();
    return name.equals("root") || name.equals("0") || name.equals(ownUser);
  }

  private ObjectNode dispatch(byte[] line) {
    JsonNode request;
    try {
      request = Json.parse(line, JsonNode.class, "control request");
    } catch (IOException e) {
      return error(e.getMessage());
    }
    if (!request.isObject() || !request.path("op").isTextual()) {
      return error("request must be a JSON object with a string \"op\"");
    }
    String op = request.get("op").asText();
    try {
      ObjectNode result = handler.handle(op, request);
      ObjectNode out = Json.MAPPER.createObjectNode().put("ok", true);
      if (result != null) {
        out.setAll(result);
      }
      return out;
    } catch (IllegalArgumentException | IOException e) {
      return error(e.getMessage());
    } catch (Exception e) {
      LOG.log(Level.WARNING, "control request '" + op + "' failed", e);
      return error(op + " failed: " + e);
    }
  }

  private static ObjectNode error(String message) {
    return Json.MAPPER
        .createObjectNode()
        .put("ok", false)
        .put("error", message == null ? "error" : message);
  }

  private static void reply(SocketChannel ch, ObjectNode response) throws IOException {
    byte[] body = Json.MAPPER.writeValueAsBytes(response);
    ByteBuffer buf = ByteBuffer.allocate(body.length + 1).put(body).put((byte) '\n').flip();
    while (buf.hasRemaining()) {
      ch.write(buf);
    }
  }

  @Override
  public void close() throws IOException {
    closed = true;
    server.close();
    connections.shutdownNow();
    Files.deleteIfExists(socketPath);
  }

  /** Splits a channel into newline-terminated lines of bounded length. */
  static final class LineReader {
    private final SocketChannel ch;
    private final ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
    private final ByteArrayOutputStream line = new ByteArrayOutputStream();

    LineReader(SocketChannel ch) {
      this.ch = ch;
      buf.flip();
    }

    /** The next line without its newline, or null at end of stream. */
    byte[] next() throws IOException {
      line.reset();
      while (true) {
        while (buf.hasRemaining()) {
          byte b = buf.get();
          if (b == '\n') {
            return line.toByteArray();
          }
          if (line.size() >= MAX_REQUEST_BYTES) {
            throw new IOException("control request longer than " + MAX_REQUEST_BYTES + " bytes");
          }
          line.write(b);
        }
        buf.clear();
        int n = ch.read(buf);
        buf.flip();
        if (n < 0) {
          return line.size() > 0 ? line.toByteArray() : null;
        }
      }
    }
  }
}

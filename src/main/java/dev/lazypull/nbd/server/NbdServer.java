package dev.lazypull.nbd.server;

import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.nbd.protocol.ExportInfo;
import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.nbd.protocol.PayloadBuffers;
import dev.lazypull.sys.OnceLogger;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;

/**
 * An NBD server of one export ({@link ExportDevice}, read-only, or a {@link WritableDevice} when
 * the export is writable): listens on unix sockets and loopback TCP, and serves kernel nbd sockets
 * handed to it. Each connection has its own thread; READs waiting on fetches are answered from a
 * shared reply pool.
 *
 * <p>Limits: {@link Options#maxConnections} at once (more are closed at accept), {@link
 * Options#maxInflight} requests per connection, READs up to {@link Nbd#MAX_PAYLOAD}, option
 * payloads up to {@link Nbd#MAX_OPTION_PAYLOAD}, and a handshake must finish within {@link
 * Options#handshakeTimeout}. On a unix socket only root and the server's own user may connect (peer
 * credentials are checked).
 */
public final class NbdServer implements Closeable {
  private static final Logger LOG = Logger.getLogger(NbdServer.class.getName());

  /**
   * Server limits and timings.
   *
   * @param writeTimeout a client whose reply cannot be written for this long (it stopped reading)
   *     is disconnected, so it cannot hold the shared reply threads from other clients
   */
  public record Options(
      Duration readDeadline,
      Duration handshakeTimeout,
      Duration writeTimeout,
      int maxConnections,
      int maxInflight,
      int replyThreads,
      int payloadBudget) {
    public Options {
      if (maxConnections < 1 || maxInflight < 1 || replyThreads < 1) {
        throw new IllegalArgumentException("connection, in-flight and thread limits must be >= 1");
      }
    }

    /** Client connections at once unless configured. */
    public static final int DEFAULT_MAX_CONNECTIONS = 64;

    /**
     * WRITE payload bytes held at once by all connections of a writable export (two maximum
     * payloads).
     */
    public static final int DEFAULT_PAYLOAD_BUDGET = 2 * Nbd.MAX_PAYLOAD;

    /**
     * The fetch core's read timeout as the read deadline; 30 s handshakes, 60 s writes, 64 clients.
     */
    public static Options defaults() {
      return new Options(
          FetchSettings.DEFAULT_READ_TIMEOUT,
          Duration.ofSeconds(30),
          Duration.ofSeconds(60),
          DEFAULT_MAX_CONNECTIONS,
          128,
          8,
          DEFAULT_PAYLOAD_BUDGET);
    }

    public Options withReadDeadline(Duration d) {
      return new Options(
          d,
          handshakeTimeout,
          writeTimeout,
          maxConnections,
          maxInflight,
          replyThreads,
          payloadBudget);
    }

    public Options withMaxConnections(int n) {
      return new Options(
          readDeadline,
          handshakeTimeout,
          writeTimeout,
          n,
          maxInflight,
          replyThreads,
          payloadBudget);
    }

    public Options withHandshakeTimeout(Duration d) {
      return new Options(
          readDeadline, d, writeTimeout, maxConnections, maxInflight, replyThreads, payloadBudget);
    }

    public Options withWriteTimeout(Duration d) {
      return new Options(
          readDeadline,
          handshakeTimeout,
          d,
          maxConnections,
          maxInflight,
          replyThreads,
          payloadBudget);
    }

    /**
     * @param bytes WRITE payload bytes held at once (at least one maximum payload is always
     *     allowed)
     */
    public Options withPayloadBudget(int bytes) {
      return new Options(
          readDeadline,
          handshakeTimeout,
          writeTimeout,
          maxConnections,
          maxInflight,
          replyThreads,
          bytes);
    }
  }

  private final ExportDevice device;
  private final ExportInfo export;
  private final Options options;
  private final NbdStats stats = new NbdStats();
  private final OnceLogger once = new OnceLogger(LOG);
  private final ServerContext context = new Context();
  private final ExecutorService replies;

  /** WRITE payloads of a writable export, null for a read-only one. */
  private final PayloadPool payloads;

  private final ScheduledExecutorService timer;

  /** False when the reply pool and timer are another server's. */
  private final boolean ownsPools;

  private final ScheduledFuture<?> stalledCheck;

  /** Added and removed under this server's lock, with {@link #closed}; read anywhere. */
  private final Set<NbdConnection> connections = ConcurrentHashMap.newKeySet();

  private final List<ServerSocketChannel> listeners = new ArrayList<>();
  private final List<Path> socketFiles = new ArrayList<>();
  private final ThreadFactory connectionThreads;
  private final String ownUser = System.getProperty("user.name");

  /** Set under this server's lock: once it is, no connection is added. */
  private volatile boolean closed;

  public NbdServer(ExportDevice device, ExportInfo export, Options options) {
    this(device, export, options, numbered("lazypull-nbd-conn-"), null);
  }

  /**
   * A server that answers fetched READs and keeps its deadlines on {@code pools}' threads (the
   * reply pool and the timer): servers of one process that come and go (forks) then start no pools
   * of their own. {@code pools} must outlive this server.
   */
  public NbdServer(ExportDevice device, ExportInfo export, Options options, NbdServer pools) {
    this(device, export, options, numbered("lazypull-nbd-conn-"), pools);
  }

  /**
   * @param connectionThreads makes each connection's thread (tests hold a connection back with it)
   */
  NbdServer(
      ExportDevice device, ExportInfo export, Options options, ThreadFactory connectionThreads) {
    this(device, export, options, connectionThreads, null);
  }

  private NbdServer(
      ExportDevice device,
      ExportInfo export,
      Options options,
      ThreadFactory connectionThreads,
      NbdServer pools) {
    if (export.size() != device.size()) {
      throw new IllegalArgumentException(
          "export size " + export.size() + " != device size " + device.size());
    }
    if (export.writable()
        && !(device instanceof WritableDevice w && (w.multiConn() || !export.multiConn()))) {
      throw new IllegalArgumentException(
          "a writable export needs a writable device (and multi-connection only "
              + "when the device allows it)");
    }
    this.payloads = export.writable() ? new PayloadPool(options.payloadBudget()) : null;
    this.device = device;
    this.export = export;
    this.options = options;
    this.connectionThreads = connectionThreads;
    this.ownsPools = pools == null;
    this.replies =
        pools != null
            ? pools.replies
            : Executors.newFixedThreadPool(options.replyThreads(), numbered("lazypull-nbd-reply-"));
    this.timer =
        pools != null
            ? pools.timer
            : Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "lazypull-nbd-timer"));
    long period = Math.max(10, Math.min(5000, options.writeTimeout().toMillis() / 4));
    this.stalledCheck =
        timer.scheduleAtFixedRate(this::dropStalledClients, period, period, TimeUnit.MILLISECONDS);
  }

  private void dropStalledClients() {
    long now = System.nanoTime();
    long limit = options.writeTimeout().toNanos();
    for (NbdConnection c : connections) {
      if (c.writeBlockedNanos(now) > limit) {
        once.warn(
            "stalled:" + c.peer(),
            c.peer()
                + ": a reply could not be written for "
                + options.writeTimeout()
                + " (the client stopped reading); disconnecting it");
        c.abort();
      }
    }
  }

  private static Thread daemon(Runnable r, String name) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    return t;
  }

  private static ThreadFactory numbered(String prefix) {
    AtomicInteger n = new AtomicInteger();
    return r -> daemon(r, prefix + n.incrementAndGet());
  }

  public NbdStats stats() {
    return stats;
  }

  /** Connections currently open. */
  int connectionCount() {
    return connections.size();
  }

  /**
   * Waits up to {@code timeout} until at most {@code n} connections are open; false if they still
   * are.
   */
  synchronized boolean awaitConnections(int n, Duration timeout) throws InterruptedException {
    long until = System.nanoTime() + timeout.toNanos();
    while (connections.size() > n) {
      long left = until - System.nanoTime();
      if (left <= 0) {
        return false;
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
    return true;
  }

  /**
   * Binds {@code address} and starts accepting. A stale unix socket file (nobody answering) is
   * replaced; a live one is an error. Returns the bound address (for {@code tcp:HOST:0}, the chosen
   * port).
   *
   * @throws IllegalArgumentException for a non-loopback TCP address without {@code allowRemote}
   */
  public synchronized SocketAddress listen(ListenAddress address, boolean allowRemote)
      throws IOException {
    if (closed) {
      throw new IOException("server is closed");
    }
    ServerSocketChannel server;
    if (address instanceof ListenAddress.Unix unix) {
      Path path = unix.path();
      Files.createDirectories(path.getParent());
      replaceStaleSocket(path);
      server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
      server.bind(UnixDomainSocketAddress.of(path), 64);
      Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-------"));
      socketFiles.add(path);
    } else {
      InetSocketAddress inet = ListenAddress.resolve((ListenAddress.Tcp) address, allowRemote);
      server = ServerSocketChannel.open();
      server.bind(inet, 64);
    }
    listeners.add(server);
    SocketAddress bound = server.getLocalAddress();
    daemon(() -> acceptLoop(server, address instanceof ListenAddress.Unix), "lazypull-nbd-accept")
        .start();
    LOG.info(
        "NBD export '" + export.name() + "' (" + export.size() + " bytes) listening on " + bound);
    return bound;
  }

  private static void replaceStaleSocket(Path path) throws IOException {
    if (!Files.exists(path)) {
      return;
    }
    boolean live;
    try (SocketChannel probe = SocketChannel.open(UnixDomainSocketAddress.of(path))) {
      live = probe.isConnected();
    } catch (IOException e) {
      live = false; // nobody accepts on it: left behind by a server that died
    }
    if (live) {
      throw new IOException(path + " is in use by a running server");
    }
    Files.delete(path);
  }

  private void acceptLoop(ServerSocketChannel server, boolean unix) {
    while (!closed) {
      SocketChannel ch;
      try {
        ch = server.accept();
      } catch (IOException e) {
        if (!closed) {
          LOG.warning("NBD accept: " + e.getMessage());
        }
        return;
      }
      try {
        String peer = describePeer(ch, unix);
        if (unix && !allowedUnixPeer(ch)) {
          stats.connectionsRefused.increment();
          once.warn(
              "peer:" + peer,
              "refusing NBD connection from "
                  + peer
                  + ": only root and "
                  + ownUser
                  + " may connect");
          ch.close();
          continue;
        }
        start(new ChannelTransport(ch, peer), false);
      } catch (IOException e) {
        LOG.fine("NBD accept: " + e.getMessage());
        closeQuietly(ch);
      }
    }
  }

  private static String describePeer(SocketChannel ch, boolean unix) throws IOException {
    if (unix) {
      UnixDomainPrincipal p = ch.getOption(ExtendedSocketOptions.SO_PEERCRED);
      return "unix peer " + p.user().getName();
    }
    return "tcp peer " + ch.getRemoteAddress();
  }

  private boolean allowedUnixPeer(SocketChannel ch) throws IOException {
    String name = ch.getOption(ExtendedSocketOptions.SO_PEERCRED).user().getName();
    return name.equals("root") || name.equals("0") || name.equals(ownUser);
  }

  private static void closeQuietly(SocketChannel ch) {
    try {
      ch.close();
    } catch (IOException e) {
      // nothing more to do
    }
  }

  /**
   * Serves one end of a socketpair whose other end the kernel's nbd driver holds: transmission
   * only, simple replies. Returns at once; the connection runs on its own thread.
   */
  public void serveKernelSocket(int fd, String peer) throws IOException {
    start(new FdTransport(fd, peer), true);
  }

  /**
   * Adds a connection and starts its thread. Under the lock, against {@link #close}: a connection
   * is either refused, or added before the server closes, so close sees it (shuts it down, aborts
   * it) and the pools it uses stay up until it has ended.
   */
  private void start(NbdTransport transport, boolean kernel) throws IOException {
    NbdConnection c;
    synchronized (this) {
      if (closed) {
        transport.close();
        throw new IOException("server is closed");
      }
      if (connections.size() >= options.maxConnections()) {
        stats.connectionsRefused.increment();
        once.warn(
            "maxconn",
            "refusing NBD connection from "
                + transport.peer()
                + ": "
                + options.maxConnections()
                + " connections are open already");
        transport.close();
        return;
      }
      c = new NbdConnection(transport, context, kernel);
      connections.add(c);
    }
    stats.connections.increment();
    try {
      connectionThreads.newThread(c).start();
    } catch (RuntimeException | Error e) { // no thread: the connection never runs, so end it here
      transport.close();
      context.closed(c);
      throw e;
    }
  }

  ExportDevice device() {
    return device;
  }

  public ExportInfo export() {
    return export;
  }

  /** What this server's connections see of it. */
  private final class Context implements ServerContext {
    @Override
    public ExportDevice device() {
      return device;
    }

    @Override
    public ExportInfo export() {
      return export;
    }

    @Override
    public Executor replies() {
      return replies;
    }

    @Override
    public Duration readDeadline() {
      return options.readDeadline();
    }

    @Override
    public int maxInflight() {
      return options.maxInflight();
    }

    @Override
    public NbdStats stats() {
      return stats;
    }

    @Override
    public PayloadBuffers payloads() {
      return payloads;
    }

    @Override
    public OnceLogger log() {
      return once;
    }

    @Override
    public ScheduledFuture<?> scheduleHandshakeDeadline(NbdConnection c) {
      return timer.schedule(
          () -> {
            once.warn(
                "handshake-timeout",
                c.peer()
                    + ": no export chosen within "
                    + options.handshakeTimeout()
                    + "; disconnecting");
            c.abort();
          },
          options.handshakeTimeout().toMillis(),
          TimeUnit.MILLISECONDS);
    }

    @Override
    public void closed(NbdConnection c) {
      synchronized (NbdServer.this) {
        connections.remove(c);
        NbdServer.this.notifyAll();
        if (closed && connections.isEmpty()) {
          stopPools();
        }
      }
    }
  }

  /**
   * Stops listening, lets connections finish the requests in progress (new ones get ESHUTDOWN) for
   * up to {@code grace}, then disconnects what is left. The reply pool and the timer stop when the
   * last connection has ended: a disconnected connection still answers (into its closed socket)
   * what is in flight, and only then releases its thread.
   */
  public void close(Duration grace) {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      if (connections.isEmpty()) {
        stopPools();
      }
    }
    for (ServerSocketChannel s : listeners) {
      try {
        s.close();
      } catch (IOException e) {
        // closing
      }
    }
    for (Path p : socketFiles) {
      try {
        Files.deleteIfExists(p);
      } catch (IOException e) {
        LOG.fine("removing " + p + ": " + e.getMessage());
      }
    }
    for (NbdConnection c : connections) {
      c.shutdown();
    }
    try {
      awaitConnections(0, grace);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    for (NbdConnection c : connections) {
      c.abort();
    }
  }

  /** Once closed and without connections: nothing can use the pools any more. */
  private void stopPools() {
    stalledCheck.cancel(false);
    if (!ownsPools) {
      return; // another server's: it stops them
    }
    replies.shutdown();
    timer.shutdownNow();
  }

  @Override
  public void close() {
    close(Duration.ZERO);
  }
}

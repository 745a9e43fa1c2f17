package dev.lazypull.snapshotter;

import io.grpc.BindableService;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.MultiThreadIoEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.Epoll;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollIoHandler;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * gRPC over unix domain sockets (netty's epoll transport, as containerd's own clients and plugins
 * use them).
 */
public final class UnixGrpc {
  /**
   * Netty warns once per connection that unix sockets have no SO_KEEPALIVE (grpc-java sets it for
   * every transport); kept referenced so the level holds.
   */
  private static final Logger BOOTSTRAP_LOG = quiet("io.grpc.netty.shaded.io.netty.bootstrap");

  private UnixGrpc() {}

  private static Logger quiet(String name) {
    Logger l = Logger.getLogger(name);
    l.setLevel(Level.SEVERE);
    return l;
  }

  /** One event loop thread shared by the servers and channels of this process. */
  private static final class Loop {
    static final EventLoopGroup GROUP = create();

    private static EventLoopGroup create() {
      if (!Epoll.isAvailable()) {
        throw new IllegalStateException(
            "netty's epoll transport is unavailable here (unix sockets need it): "
                + Epoll.unavailabilityCause());
      }
      return new MultiThreadIoEventLoopGroup(
          1,
          r -> {
            Thread t = new Thread(r, "lazypull-grpc-io");
            t.setDaemon(true);
            return t;
          },
          EpollIoHandler.newFactory());
    }
  }

  /** A running server: stop it with {@link #close}. */
  public static final class Listener implements AutoCloseable {
    private final Server server;
    private final ExecutorService executor;
    private final Path socket;

    private Listener(Server server, ExecutorService executor, Path socket) {
      this.server = server;
      this.executor = executor;
      this.socket = socket;
    }

    public Path socket() {
      return socket;
    }

    public void awaitTermination() throws InterruptedException {
      server.awaitTermination();
    }

    @Override
    public void close() {
      server.shutdown();
      try {
        if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
          server.shutdownNow();
        }
      } catch (InterruptedException e) {
        server.shutdownNow();
        Thread.currentThread().interrupt();
      }
      executor.shutdownNow();
      try {
        Files.deleteIfExists(socket);
      } catch (IOException e) {
        // a later start replaces it
      }
    }
  }

  /**
   * Serves {@code services} on a unix socket at {@code socket} (a stale socket file is replaced;
   * mode 0660), each call on a pool of {@code threads} threads.
   */
  public static Listener serve(Path socket, int threads, BindableService... services)
      throws IOException {
    BOOTSTRAP_LOG.fine("serving on " + socket);
    Files.createDirectories(socket.toAbsolutePath().getParent());
    Files.deleteIfExists(socket);
    ExecutorService executor =
        Executors.newFixedThreadPool(
            threads,
            r -> {
              Thread t = new Thread(r, "lazypull-grpc-call");
              t.setDaemon(true);
              return t;
            });
    NettyServerBuilder b =
        NettyServerBuilder.forAddress(new DomainSocketAddress(socket.toString()))
            .channelType(EpollServerDomainSocketChannel.class)
            .bossEventLoopGroup(Loop.GROUP)
            .workerEventLoopGroup(Loop.GROUP)
            .executor(executor)
            .maxInboundMessageSize(16 << 20);
    for (BindableService s : services) {
      b.addService(s);
    }
    Server server = b.build().start();
    Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-rw----"));
    return new Listener(server, executor, socket);
  }

  /** A plaintext channel to a unix socket (containerd's, or a snapshotter's). */
  public static ManagedChannel connect(Path socket) {
    BOOTSTRAP_LOG.fine("connecting to " + socket);
    return NettyChannelBuilder.forAddress(new DomainSocketAddress(socket.toString()))
        .channelType(EpollDomainSocketChannel.class)
        .eventLoopGroup(Loop.GROUP)
        .usePlaintext()
        .overrideAuthority("localhost")
        .maxInboundMessageSize(16 << 20)
        .build();
  }
}

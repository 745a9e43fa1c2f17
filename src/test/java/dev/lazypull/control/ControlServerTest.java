package dev.lazypull.control;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.image.Json;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.Requirements;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ControlServerTest {
  @TempDir Path tmp;

  private ControlServer echo(Path socket) throws Exception {
    return ControlServer.start(
        socket,
        (op, req) -> {
          if (op.equals("fail")) {
            throw new IllegalArgumentException("asked to fail");
          }
          return Json.MAPPER.createObjectNode().put("echo", op).put("n", req.path("n").asInt());
        });
  }

  @Test
  void answersRequestsAndReportsErrors() throws Exception {
    Path socket = tmp.resolve("run/ctl.sock");
    try (ControlServer server = echo(socket)) {
      assertEquals(
          "rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)));
      assertEquals(
          "rwx------",
          PosixFilePermissions.toString(Files.getPosixFilePermissions(socket.getParent())));
      ControlClient client = new ControlClient(socket);
      JsonNode r = client.call(ControlClient.request("hello").put("n", 7));
      assertEquals("hello", r.get("echo").asText());
      assertEquals(7, r.get("n").asInt());
      ControlException e =
          assertThrows(ControlException.class, () -> client.call(ControlClient.request("fail")));
      assertEquals("asked to fail", e.getMessage());
    }
    assertFalse(Files.exists(socket), "socket removed on close");
  }

  @Test
  void malformedLinesGetErrorsAndTheConnectionStaysUsable() throws Exception {
    Path socket = tmp.resolve("ctl.sock");
    try (ControlServer server = echo(socket);
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      ch.connect(UnixDomainSocketAddress.of(socket));
      String replies = exchange(ch, "not json\n[1,2]\n{\"op\":5}\n{\"op\":\"ok\",\"n\":3}\n", 4);
      String[] lines = replies.split("\n");
      assertTrue(lines[0].contains("\"ok\":false") && lines[0].contains("malformed"), lines[0]);
      assertTrue(lines[1].contains("\"ok\":false"), lines[1]);
      assertTrue(lines[2].contains("\"ok\":false"), lines[2]);
      assertTrue(lines[3].contains("\"ok\":true") && lines[3].contains("\"n\":3"), lines[3]);
    }
  }

  @Test
  void aSecondDaemonOnTheSameSocketIsRefusedAndAStaleSocketReplaced() throws Exception {
    Path socket = tmp.resolve("ctl.sock");
    try (ControlServer server = echo(socket)) {
      Exception e = assertThrows(Exception.class, () -> echo(socket));
      assertTrue(e.getMessage().contains("already listening"), e.getMessage());
    }
    Files.createFile(socket); // stale leftover
    try (ControlServer server = echo(socket)) {
      assertEquals(
          "x", new ControlClient(socket).call(ControlClient.request("x")).get("echo").asText());
    }
  }

  @Test
  void nonRootPeersAreRefusedEvenWhenTheSocketIsReachable() throws Exception {
    Requirements.requireRoot();
    Requirements.requireTool("setpriv");
    Path dir = Files.createDirectories(tmp.resolve("open"));
    Path socket = dir.resolve("ctl.sock");
    String client =
        "import socket,sys\n"
            + "s=socket.socket(socket.AF_UNIX)\n"
            + "try:\n s.connect(sys.argv[1])\nexcept OSError as e:\n print('CONNECT', e.strerror); sys.exit(0)\n"
            // a refused peer may find the connection closed before it sends: its reply is queued
            // already
            + "try:\n s.sendall(b'{\"op\":\"ping\"}\\n')\nexcept OSError:\n pass\n"
            + "print(s.recv(4096).decode())\n";
    try (ControlServer server = echo(socket)) {
      // Default permissions: an unprivileged user cannot even reach the socket (0700 dir, 0600
      // socket).
      Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
      String denied =
          Requirements.run(
              "setpriv",
              "--reuid=65534",
              "--regid=65534",
              "--clear-groups",
              "/usr/bin/python3",
              "-c",
              client,
              socket.toString());
      assertTrue(denied.contains("CONNECT Permission denied"), denied);
      // Opened up by mistake: SO_PEERCRED still refuses the peer.
      Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
      Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-rw-rw-"));
      ExpectedLogs.warning("control socket: refused a connection from user nobody");
      String refused =
          Requirements.run(
              "setpriv",
              "--reuid=65534",
              "--regid=65534",
              "--clear-groups",
              "/usr/bin/python3",
              "-c",
              client,
              socket.toString());
      assertTrue(
          refused.contains("\"ok\":false") && refused.contains("permission denied"), refused);
      assertEquals(
          "ok",
          new ControlClient(socket).call(ControlClient.request("ok")).get("echo").asText(),
          "root is still served");
    }
  }

  @Test
  void unreachableDaemonIsAClearError() {
    ControlException e =
        assertThrows(
            ControlException.class,
            () -> new ControlClient(tmp.resolve("none.sock")).call(ControlClient.request("ping")));
    assertTrue(e.getMessage().contains("is it running"), e.getMessage());
  }

  private static String exchange(SocketChannel ch, String send, int lines) throws Exception {
    ch.write(ByteBuffer.wrap(send.getBytes(StandardCharsets.UTF_8)));
    StringBuilder got = new StringBuilder();
    ByteBuffer buf = ByteBuffer.allocate(4096);
    while (got.chars().filter(c -> c == '\n').count() < lines) {
      buf.clear();
      if (ch.read(buf) < 0) {
        break;
      }
      got.append(new String(buf.array(), 0, buf.position(), StandardCharsets.UTF_8));
    }
    return got.toString();
  }
}

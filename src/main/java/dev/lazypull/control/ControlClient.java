package dev.lazypull.control;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.lazypull.image.Json;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;

/** Sends one control request to the running daemon and returns its answer. */
public final class ControlClient {
  private final Path socketPath;

  public ControlClient(Path socketPath) {
    this.socketPath = socketPath;
  }

  public static ObjectNode request(String op) {
    return Json.MAPPER.createObjectNode().put("op", op);
  }

  /**
   * Sends {@code request}; returns the response if {@code ok}, else throws with the daemon's error.
   */
  public JsonNode call(ObjectNode request) throws IOException {
    SocketChannel ch;
    try {
      ch = SocketChannel.open(StandardProtocolFamily.UNIX);
      ch.connect(UnixDomainSocketAddress.of(socketPath));
    } catch (IOException e) {
      throw new ControlException(
          "cannot reach the lazypull daemon at "
              + socketPath
              + " ("
              + e.getMessage()
              + "): is it running? start it with `lazypull daemon` or `systemctl start lazypull`",
          e);
    }
    try (ch) {
      byte[] body = Json.MAPPER.writeValueAsBytes(request);
      ByteBuffer out = ByteBuffer.allocate(body.length + 1).put(body).put((byte) '\n').flip();
      while (out.hasRemaining()) {
        ch.write(out);
      }
      ByteArrayOutputStream reply = new ByteArrayOutputStream();
      ByteBuffer in = ByteBuffer.allocate(64 * 1024);
      while (true) {
        in.clear();
        int n = ch.read(in);
        if (n < 0) {
          break;
        }
        in.flip();
        int nl = -1;
        for (int i = in.position(); i < in.limit(); i++) {
          if (in.get(i) == '\n') {
            nl = i;
            break;
          }
        }
        if (nl >= 0) {
          reply.write(in.array(), in.position(), nl - in.position());
          break;
        }
        reply.write(in.array(), in.position(), in.remaining());
        if (reply.size() > Json.MAX_DOCUMENT_BYTES) {
          throw new ControlException("daemon reply too large");
        }
      }
      JsonNode response = Json.parse(reply.toByteArray(), JsonNode.class, "daemon reply");
      if (!response.path("ok").asBoolean(false)) {
        throw new ControlException(response.path("error").asText("the daemon refused the request"));
      }
      return response;
    }
  }
}

package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.testing.MemoryBlobSource;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;
import org.junit.jupiter.api.Test;

class ReadAheadSocketsTest {
  /**
   * A socket's stream as the kernel serves it: each read returns at most what one "arrival" holds
   * (or throws what is queued), and counts the calls.
   */
  private static final class Arrivals extends InputStream {
    final Deque<Object> queue = new ArrayDeque<>();
    int reads;
    int available;

    Arrivals add(byte[] bytes) {
      queue.add(bytes);
      return this;
    }

    Arrivals fail(IOException e) {
      queue.add(e);
      return this;
    }

    @Override
    public int read() {
      throw new AssertionError("single-byte reads of the socket");
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      reads++;
      Object next = queue.poll();
      if (next == null) {
        return -1;
      }
      if (next instanceof IOException e) {
        throw e;
      }
      byte[] bytes = (byte[]) next;
      int n = Math.min(len, bytes.length);
      System.arraycopy(bytes, 0, b, off, n);
      if (n < bytes.length) {
        queue.addFirst(Arrays.copyOfRange(bytes, n, bytes.length));
      }
      return n;
    }

    @Override
    public int available() {
      available++;
      return 0;
    }
  }

  private static byte[] drain(InputStream in, int readSize) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] b = new byte[readSize];
    for (int n; (n = in.read(b, 0, b.length)) >= 0; ) {
      out.write(b, 0, n);
    }
    return out.toByteArray();
  }

  @Test
  void eightKibReadsOfLargeArrivalsCostOneSocketReadPerArrival() throws IOException {
    byte[] data = MemoryBlobSource.randomBytes(1 << 20, 7);
    Arrivals socket = new Arrivals();
    for (int off = 0; off < data.length; off += 200 << 10) {
      socket.add(Arrays.copyOfRange(data, off, Math.min(data.length, off + (200 << 10))));
    }
    InputStream in = new ReadAheadSockets.ReadAheadInputStream(socket, 256 << 10);
    assertArrayEquals(data, drain(in, 8192), "every byte, in order");
    assertEquals(6 + 1, socket.reads, "one read per 200 KiB arrival, and the end: " + socket.reads);
    assertEquals(0, socket.available, "never asks the socket for available()");
  }

  @Test
  void returnsWhatItHasWithoutWaitingForMore() throws IOException {
    Arrivals socket = new Arrivals().add(new byte[] {1, 2, 3});
    InputStream in = new ReadAheadSockets.ReadAheadInputStream(socket, 64);
    byte[] b = new byte[10];
    assertEquals(3, in.read(b, 0, 10));
    assertEquals(1, socket.reads, "a short arrival is returned, not topped up");
  }

  @Test
  void aTimeoutLosesNothingAndReadingGoesOnAfterIt() throws IOException {
    Arrivals socket =
        new Arrivals()
            .add(new byte[] {1, 2, 3, 4})
            .fail(new SocketTimeoutException("read timed out"))
            .add(new byte[] {5, 6});
    InputStream in = new ReadAheadSockets.ReadAheadInputStream(socket, 64);
    byte[] b = new byte[2];
    assertEquals(2, in.read(b, 0, 2));
    assertEquals(2, in.read(b, 0, 2));
    assertEquals(3, b[0]);
    assertThrows(SocketTimeoutException.class, () -> in.read(b, 0, 2));
    assertEquals(2, in.read(b, 0, 2));
    assertArrayEquals(new byte[] {5, 6}, b);
    assertEquals(-1, in.read(b, 0, 2));
    assertEquals(-1, in.read());
  }

  @Test
  void readsAsLargeAsTheBufferGoStraightThrough() throws IOException {
    byte[] data = MemoryBlobSource.randomBytes(100, 3);
    Arrivals socket = new Arrivals().add(data);
    InputStream in = new ReadAheadSockets.ReadAheadInputStream(socket, 64);
    byte[] b = new byte[100];
    assertEquals(100, in.read(b, 0, 100));
    assertArrayEquals(data, b);
  }

  @Test
  void singleBytesSkipsAndAvailableComeFromTheBuffer() throws IOException {
    Arrivals socket = new Arrivals().add(new byte[] {9, 8, 7, 6, 5});
    InputStream in = new ReadAheadSockets.ReadAheadInputStream(socket, 64);
    assertEquals(9, in.read());
    assertEquals(4, in.available());
    assertEquals(2, in.skip(2));
    assertEquals(5, in.read(new byte[8], 0, 8) + 3, "two bytes left after the skip");
    assertEquals(0, socket.available);
  }

  @Test
  void aRealSocketReadsAheadAndKeepsOneStream() throws Exception {
    byte[] data = MemoryBlobSource.randomBytes(3 << 20, 5);
    try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      Thread writer =
          new Thread(
              () -> {
                try (Socket s = server.accept();
                    OutputStream out = s.getOutputStream()) {
                  out.write(data);
                } catch (IOException e) {
                  throw new RuntimeException(e);
                }
              });
      writer.start();
      try (Socket s =
          new ReadAheadSockets()
              .createSocket(InetAddress.getLoopbackAddress(), server.getLocalPort())) {
        InputStream in = s.getInputStream();
        assertTrue(in instanceof ReadAheadSockets.ReadAheadInputStream, in.getClass().getName());
        assertEquals(in, s.getInputStream(), "the same stream each time: no buffered byte lost");
        assertArrayEquals(data, drain(in, 8192));
      }
      writer.join();
    }
  }
}

package dev.lazypull.fanotify;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.fanotify.FanotifyMessage.Event;
import dev.lazypull.sys.Errno;
import dev.lazypull.sys.ErrnoException;
import dev.lazypull.sys.Fanotify;
import dev.lazypull.testing.Requirements;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real pre-content group on the host kernel (root, 6.14+): events, fills through the event fd,
 * answers.
 */
class KernelFanotifyGroupTest {
  @TempDir Path tmp;
  private ExecutorService readers;
  private KernelFanotifyGroup group;
  private final ByteBuffer buf = ByteBuffer.allocateDirect(FanotifyDecoder.READ_BUFFER_SIZE);

  @BeforeEach
  void setUp() throws Exception {
    Requirements.requireRoot();
    readers = Executors.newCachedThreadPool();
    group = KernelFanotifyGroup.open();
  }

  @AfterEach
  void tearDown() {
    if (group != null) {
      group.close(); // allows anything still pending, so no reader thread stays blocked
    }
    if (readers != null) {
      readers.shutdownNow();
    }
  }

  private Future<byte[]> read(Path file, long offset, int length) {
    return readers.submit(
        () -> {
          try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(length);
            while (b.hasRemaining() && ch.read(b, offset + b.position()) > 0) {
              // loop until full or end of file
            }
            return Arrays.copyOf(b.array(), b.position());
          }
        });
  }

  private Event nextEvent() throws IOException {
    assertTrue(group.awaitEvents(30_000), "no event within 30 s");
    List<FanotifyMessage> batch = group.readBatch(buf);
    assertEquals(1, batch.size(), batch.toString());
    return assertInstanceOf(Event.class, batch.get(0));
  }

  @Test
  void fillsTheRangeThroughTheEventFdThenAllowsOrDeniesWithAnErrno() throws Exception {
    Path file = tmp.resolve("cache");
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
      f.setLength(1 << 20); // all holes
    }
    group.mark(file);
    Future<byte[]> reader = read(file, 20_000, 5000);

    Event e = nextEvent();
    assertTrue(e.isPermission());
    assertEquals(ProcessHandle.current().pid(), e.pid(), "the reading process");
    assertTrue(e.hasRange());
    assertEquals(16384, e.offset(), "page-aligned down");
    assertEquals(12288, e.count(), "page-aligned up: 20000..25000 lies in pages 4..6");
    assertFalse(reader.isDone(), "the reader waits for the answer");
    byte[] fill = new byte[(int) e.count()];
    for (int i = 0; i < fill.length; i++) {
      fill[i] = (byte) (e.offset() + i);
    }
    ByteBuffer data = ByteBuffer.allocateDirect(fill.length).put(fill).flip();
    assertEquals(fill.length, group.pwrite(e.fd(), data, e.offset()));
    assertFalse(group.awaitEvents(0), "a write through the event's fd raises no event");
    group.finish(e.fd(), FanotifyResponse.ALLOW);
    assertArrayEquals(
        Arrays.copyOfRange(fill, 20_000 - 16384, 25_000 - 16384), reader.get(30, TimeUnit.SECONDS));

    Future<byte[]> denied = read(file, 0, 100);
    Event d = nextEvent();
    assertEquals(0, d.offset());
    group.finish(d.fd(), FanotifyResponse.denyErrno(Errno.EIO));
    ExecutionException failed =
        assertThrows(ExecutionException.class, () -> denied.get(30, TimeUnit.SECONDS));
    assertInstanceOf(IOException.class, failed.getCause());
    assertTrue(
        failed.getCause().getMessage().contains("Input/output error"),
        failed.getCause().getMessage());

    ErrnoException answered =
        assertThrows(ErrnoException.class, () -> group.respond(d.fd(), FanotifyResponse.ALLOW));
    assertEquals(Errno.ENOENT, answered.errno(), "an event is answered once");

    group.unmark(file);
    assertArrayEquals(
        new byte[100], read(file, 0, 100).get(30, TimeUnit.SECONDS), "no mark: no event, the hole");
    assertFalse(group.awaitEvents(0));
  }

  @Test
  void aWriteThroughAnyOtherFdRaisesAnEventOfItsOwn() throws Exception {
    Path file = tmp.resolve("cache");
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
      f.setLength(1 << 16);
    }
    group.mark(file);
    Future<Integer> writer =
        readers.submit(
            () -> {
              try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                return ch.write(ByteBuffer.wrap(new byte[] {1, 2, 3}), 8192);
              }
            });
    Event e = nextEvent();
    assertEquals(ProcessHandle.current().pid(), e.pid());
    assertEquals(8192, e.offset());
    assertEquals(4096, e.count());
    assertFalse(
        writer.isDone(),
        "the writer waits like a reader: a thread answering events must never do this");
    group.finish(e.fd(), FanotifyResponse.ALLOW);
    assertEquals(3, writer.get(30, TimeUnit.SECONDS));
  }

  @Test
  void eventsReadButNeverAnsweredAreFoundBySweepingFdNumbers() throws Exception {
    Path file = tmp.resolve("cache");
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
      f.setLength(1 << 20);
    }
    group.mark(file);
    Future<byte[]> orphan = read(file, 0, 10);
    Event lost = nextEvent();
    Future<byte[]> kept = read(file, 65536, 10);
    Event live = nextEvent();
    group.closeEventFd(
        lost.fd()); // as a dying daemon's exit would: the event still waits under its number
    assertFalse(orphan.isDone());
    long t0 = System.nanoTime();
    int answered =
        group.answerWaiting(0, 65536, FanotifyResponse.denyErrno(Errno.EIO), fd -> fd == live.fd());
    long micros = (System.nanoTime() - t0) / 1000;
    assertEquals(1, answered);
    ExecutionException failed =
        assertThrows(ExecutionException.class, () -> orphan.get(30, TimeUnit.SECONDS));
    assertTrue(
        failed.getCause().getMessage().contains("Input/output error"),
        failed.getCause().getMessage());
    assertFalse(kept.isDone(), "the kept event still waits");
    assertFalse(group.respondIfPending(lost.fd(), FanotifyResponse.ALLOW), "answered once");
    ByteBuffer data = ByteBuffer.allocateDirect((int) live.count());
    while (data.hasRemaining()) {
      data.put((byte) 9);
    }
    group.pwrite(live.fd(), data.flip(), live.offset());
    assertTrue(group.respondIfPending(live.fd(), FanotifyResponse.ALLOW));
    group.closeEventFd(live.fd());
    byte[] nines = new byte[10];
    Arrays.fill(nines, (byte) 9);
    assertArrayEquals(nines, kept.get(30, TimeUnit.SECONDS));
    System.out.printf("swept 65536 fd numbers in %d us%n", micros);
  }

  @Test
  void anAdoptedGroupIsMadeCloseOnExecAndWorks() throws Exception {
    int raw =
        Fanotify.init(
            KernelFanotifyGroup.INIT_FLAGS & ~Fanotify.FAN_CLOEXEC,
            KernelFanotifyGroup
                .EVENT_F_FLAGS); // as a descriptor passed by systemd arrives: without FD_CLOEXEC
    assertEquals(0, fdFlags(raw) & 02000000);
    try (KernelFanotifyGroup adopted = KernelFanotifyGroup.adopt(raw)) {
      assertEquals(02000000, fdFlags(raw) & 02000000, "close-on-exec after adopt");
      Path file = Files.writeString(tmp.resolve("f"), "adopted");
      adopted.mark(file);
      Future<byte[]> r = read(file, 0, 7);
      assertTrue(adopted.awaitEvents(30_000));
      Event e = assertInstanceOf(Event.class, adopted.readBatch(buf).get(0));
      adopted.finish(e.fd(), FanotifyResponse.ALLOW);
      assertArrayEquals("adopted".getBytes(StandardCharsets.US_ASCII), r.get(30, TimeUnit.SECONDS));
    }
  }

  /** The "flags:" line of /proc/self/fdinfo (octal open flags; O_CLOEXEC shows as 02000000). */
  private static int fdFlags(int fd) throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd))) {
      if (line.startsWith("flags:")) {
        return Integer.parseInt(line.substring(6).trim(), 8);
      }
    }
    throw new IOException("no flags in fdinfo of " + fd);
  }

  @Test
  void markErrorsAndUnknownAnswersAreErrnoExceptions() throws Exception {
    assertEquals(
        Errno.ENOENT,
        assertThrows(ErrnoException.class, () -> group.mark(tmp.resolve("none"))).errno());
    assertEquals(
        Errno.ENOENT,
        assertThrows(
                ErrnoException.class,
                () -> group.respond(Integer.MAX_VALUE, FanotifyResponse.denyErrno(Errno.EIO)))
            .errno());
    assertEquals(0, group.read(buf));
    assertTrue(group.readBatch(buf).isEmpty());
    group.close();
    assertThrows(IOException.class, () -> group.awaitEvents(0), "closed");
  }
}

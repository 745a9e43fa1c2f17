package dev.lazypull.fscache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.fetch.FetchCore;
import dev.lazypull.frontend.BlobListener;
import dev.lazypull.frontend.RequestStats;
import dev.lazypull.frontend.ServedBlob;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.oci.OciLayoutWriter;
import dev.lazypull.testing.Await;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.MemoryBlobSource;
import dev.lazypull.testing.TestFetch;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link RequestHandler} driven directly, message by message, over a devnode that records what the
 * handler does with it: one copen per OPEN, one READ_COMPLETE per READ (through an fd of the READ's
 * own object), bytes written where asked, fds closed when their object's last user is done.
 */
class RequestHandlerTest {
  private static final int CHUNK = 64 << 10;
  @TempDir Path tmp;
  private final RecordingDevnode devnode = new RecordingDevnode();
  private final RequestStats stats = new RequestStats();
  private final AtomicInteger readsDone = new AtomicInteger();
  private FetchCore core;
  private RequestHandler handler;
  private Catalog catalog;
  private byte[] blob;
  private Descriptor blobDesc;

  @BeforeEach
  void setUp() throws IOException {
    OciLayoutWriter w = new OciLayoutWriter(tmp.resolve("layout"));
    byte[] boot = MemoryBlobSource.randomBytes(8192, 1);
    blob = MemoryBlobSource.randomBytes(5 * CHUNK + 99, 2);
    Descriptor bootDesc = w.putBlob(boot, MediaTypes.EROFS_BOOTSTRAP);
    blobDesc = w.putBlob(blob, MediaTypes.EROFS_BLOB);
    catalog = Catalog.load(tmp.resolve("state"));
    catalog.register(
        new ImageRecord(
            "img",
            null,
            "oci:" + tmp.resolve("layout"),
            Digest.of(new byte[] {1}),
            bootDesc,
            List.of(blobDesc),
            List.of(blobDesc.digest().hex()),
            false),
        false);
    core = TestFetch.core(CHUNK, 2 * CHUNK);
    handler =
        new RequestHandler(
            devnode, catalog, ImageSources.localOnly(), core, stats, readsDone::incrementAndGet);
  }

  @AfterEach
  void tearDown() {
    handler.closeAll();
    core.close();
  }

  private CacheObject open(int objectId, String cookie, int fd) {
    handler.onOpen(new CachefilesMsg.Open(objectId, objectId, "erofs,img", cookie, fd, 0));
    return handler.objects().stream().filter(o -> o.objectId == objectId).findFirst().orElse(null);
  }

  @Test
  void anOpenIsCopenedWithTheBlobSizeAndAReadIsAnsweredOnceWithTheBytesWritten() throws Exception {
    List<ServedBlob> opened = new ArrayList<>();
    List<long[]> reads = Collections.synchronizedList(new ArrayList<>());
    handler.addListener(
        new BlobListener() {
          @Override
          public void opened(ServedBlob b) {
            opened.add(b);
          }

          @Override
          public void read(ServedBlob b, long offset, long length) {
            reads.add(new long[] {offset, length});
          }
        });
    CacheObject o = open(7, blobDesc.digest().hex(), 70);
    assertEquals(List.of("copen 7," + blob.length), devnode.commands);
    assertEquals(List.of(o), opened);
    handler.onRead(new CachefilesMsg.Read(100, 7, CHUNK + 10, 4096));
    Await.until(() -> readsDone.get() == 1, "READ answered");
    assertEquals(
        List.of("70:100"), devnode.completions, "one READ_COMPLETE, through the object's own fd");
    assertArrayEquals(Arrays.copyOfRange(blob, CHUNK, 2 * CHUNK), devnode.bytes(70, CHUNK, CHUNK));
    assertEquals(1, stats.readsOk.sum());
    assertEquals(4096, stats.readBytesRequested.sum());
    assertEquals(1, reads.size());
    assertEquals(0, handler.inflightReadCount());
  }

  @Test
  void anUnknownCookieIsRefusedWithEnoentAndItsFdClosed() {
    ExpectedLogs.warning("refusing OPEN 9");
    assertEquals(null, open(9, "no-such-cookie", 90));
    assertEquals(List.of("copen 9,-2"), devnode.commands);
    assertTrue(devnode.closed.contains(90), "the refused OPEN's fd is closed");
    assertEquals(1, stats.opensRefused.sum());
  }

  @Test
  void invalidAndOrphanReadsAreAnsweredWithoutData() throws Exception {
    ExpectedLogs.warning("failing READ of");
    ExpectedLogs.warning("READ for unknown object 99");
    ExpectedLogs.warning("failed: java.io.IOException: invalid READ range");
    open(7, blobDesc.digest().hex(), 70);
    handler.onRead(new CachefilesMsg.Read(101, 7, 0, RequestHandler.MAX_READ_LENGTH + 1));
    handler.onRead(
        new CachefilesMsg.Read(102, 99, 0, 4096)); // no such object: answered through an fd we hold
    Await.until(() -> readsDone.get() == 2, "both READs answered");
    assertEquals(List.of("70:101", "70:102"), devnode.completions);
    assertEquals(1, stats.readsInvalid.sum());
    assertEquals(1, stats.readsOrphaned.sum());
    assertEquals(List.of(), devnode.writes, "nothing was written for either");
  }

  @Test
  void closeReleasesTheObjectsFdOnlyWhenItsLastReadIsAnswered() throws Exception {
    CacheObject o = open(7, blobDesc.digest().hex(), 70);
    o.fetcher().get();
    ExpectedLogs.allowWarning(
        "was closed by the kernel"); // the fetch may lose the race with CLOSE: EIO then
    handler.onRead(new CachefilesMsg.Read(103, 7, 0, 4096));
    handler.onClose(new CachefilesMsg.Close(104, 7));
    Await.until(() -> readsDone.get() == 1, "READ answered after CLOSE");
    assertEquals(List.of("70:103"), devnode.completions, "answered through the fd it arrived for");
    Await.until(() -> devnode.closed.contains(70), "fd closed once the READ is done");
    assertEquals(1, stats.closes.sum());
    assertTrue(handler.objects().isEmpty());
  }

  @Test
  void aReDeliveredOpenAddsAnFdToTheSameObjectAndIsCopenedAgain() {
    CacheObject first = open(7, blobDesc.digest().hex(), 70);
    CacheObject again = open(7, blobDesc.digest().hex(), 71);
    assertEquals(first, again);
    assertEquals(List.of("copen 7," + blob.length, "copen 7," + blob.length), devnode.commands);
    handler.closeAll();
    assertEquals(
        List.of(70, 71), devnode.closed.stream().sorted().toList(), "both fds closed at shutdown");
  }

  /** Records commands and replies; anon fds are byte arrays. */
  private static final class RecordingDevnode implements Devnode {
    final List<String> commands = Collections.synchronizedList(new ArrayList<>());
    final List<String> completions = Collections.synchronizedList(new ArrayList<>());
    final List<Integer> closed = Collections.synchronizedList(new ArrayList<>());
    final List<String> writes = Collections.synchronizedList(new ArrayList<>());
    final Map<Integer, byte[]> files = new ConcurrentHashMap<>();

    byte[] bytes(int fd, int offset, int length) {
      return Arrays.copyOfRange(files.get(fd), offset, offset + length);
    }

    @Override
    public boolean awaitRequest(int timeoutMillis) {
      return false;
    }

    @Override
    public int read(ByteBuffer buf) {
      return 0;
    }

    @Override
    public void command(String command) {
      commands.add(command);
    }

    @Override
    public void readComplete(int anonFd, int msgId) {
      completions.add(anonFd + ":" + msgId);
    }

    @Override
    public synchronized long pwrite(int anonFd, ByteBuffer buf, long offset) {
      byte[] f = files.computeIfAbsent(anonFd, k -> new byte[16 * CHUNK]);
      int n = buf.remaining();
      buf.duplicate().get(f, (int) offset, n);
      writes.add(anonFd + ":" + offset + "+" + n);
      return n;
    }

    @Override
    public long seekData(int anonFd, long offset) {
      return -1; // a fresh backing file
    }

    @Override
    public long seekHole(int anonFd, long offset) {
      return offset;
    }

    @Override
    public void adoptAnonFd(int anonFd) {}

    @Override
    public void closeAnonFd(int anonFd) {
      closed.add(anonFd);
    }

    @Override
    public void close() {}
  }
}

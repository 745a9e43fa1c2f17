package dev.lazypull.fanotify;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.app.DaemonApi;
import dev.lazypull.cli.Main;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.sys.Errno;
import dev.lazypull.testing.Await;
import dev.lazypull.testing.DaemonHarness;
import dev.lazypull.testing.ExpectedLogs;
import dev.lazypull.testing.TestTrees;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fanotify front end inside the whole daemon, over a fake group that plays the kernel's events:
 * a mount is prepared (bootstrap cached whole, data file marked), accesses are answered ALLOW only
 * once their range is in the file, present ranges at once, failures with EIO, and a complete file
 * loses its mark.
 */
class FanotifyFrontendTest {
  private static final int READER = 4242;
  @TempDir Path tmp;
  private DaemonHarness harness;

  @AfterEach
  void stop() {
    if (harness != null) {
      harness.close();
    }
  }

  /**
   * Packs a tree of random files into a layout and starts the daemon; returns the image reference.
   */
  private String packAndStart(long bytes) throws Exception {
    Path tree = Files.createDirectories(tmp.resolve("tree"));
    TestTrees.write(tree.resolve("data.bin"), bytes, new Random(3));
    String ref = "oci:" + tmp.resolve("layout") + ":v1";
    assertEquals(0, Main.run("pack", tree.toString(), "--output", ref));
    harness = DaemonHarness.in(tmp).fanotify().start();
    return ref;
  }

  private JsonNode call(String op, String image) throws Exception {
    return new DaemonApi(harness.daemon)
        .handle(op, Json.MAPPER.createObjectNode().put("image", image));
  }

  @Test
  void aPreparedMountIsFilledBeforeItsAccessesAreAllowed() throws Exception {
    String ref = packAndStart(3L << 20);
    JsonNode reply = call("register", ref);
    JsonNode mount = reply.path("mount");
    assertEquals("fanotify", mount.path("frontend").asText());
    Path bootstrap = Path.of(mount.path("source").asText());
    String options = mount.path("options").asText();
    assertTrue(options.startsWith("device=/"), options);
    Path data = Path.of(options.substring("device=".length()));
    Descriptor blob = harness.catalog().list().get(0).blobs().get(0);
    assertEquals(
        harness.catalog().list().get(0).bootstrap().size(),
        Files.size(bootstrap),
        "bootstrap whole");
    long device = LazyImage.deviceSize(blob);
    assertTrue(LazyImage.isCompressed(blob), "packed with compressed chunks (the default)");
    assertEquals(device, Files.size(data), "the data file is the device, sparse");
    byte[] expected =
        Files.readAllBytes(tmp.resolve("tree/data.bin")); // the device: the one file's chunks

    FakeFanotifyGroup g = harness.group;
    assertEquals(
        FanotifyResponse.ALLOW,
        g.access(data, 1 << 20, 128 << 10, READER).get(10, TimeUnit.SECONDS));
    assertArrayEquals(
        Arrays.copyOfRange(expected, 1 << 20, (1 << 20) + (128 << 10)),
        Arrays.copyOfRange(Files.readAllBytes(data), 1 << 20, (1 << 20) + (128 << 10)),
        "filled before ALLOW");
    long fetched = harness.fetchStats().bytesFetched.sum();
    assertEquals(
        FanotifyResponse.ALLOW, g.access(data, 1 << 20, 4096, READER).get(10, TimeUnit.SECONDS));
    assertEquals(
        fetched,
        harness.fetchStats().bytesFetched.sum(),
        "a present range is allowed without a fetch");
    assertEquals(2, harness.stats().readsOk.sum());

    // read everything: the file becomes complete and loses its mark (later reads raise no event)
    for (long off = 0; off < device; off += 1 << 20) {
      assertEquals(
          FanotifyResponse.ALLOW, g.access(data, off, 1 << 20, READER).get(10, TimeUnit.SECONDS));
    }
    assertArrayEquals(expected, Arrays.copyOf(Files.readAllBytes(data), expected.length));
    Await.until(() -> !g.isMarked(data), "the complete file unmarked");
    assertEquals("fanotify", call("status", ref).path("frontend").asText());
  }

  @Test
  void aFailedFetchIsDeniedWithEioAndOwnWritesAreLetThrough() throws Exception {
    String ref = packAndStart(1L << 20);
    JsonNode mount = call("register", ref).path("mount");
    Path data = Path.of(mount.path("options").asText().substring("device=".length()));
    FakeFanotifyGroup g = harness.group;
    // the daemon's own writes into the file raise events too: answered at once, whatever is missing
    int own = (int) ProcessHandle.current().pid();
    assertEquals(FanotifyResponse.ALLOW, g.access(data, 0, 4096, own).get(10, TimeUnit.SECONDS));
    // the image's blob vanishes from its layout: the fetch fails, the reader gets EIO, never zeros
    Descriptor blob = harness.catalog().list().get(0).blobs().get(0);
    Files.delete(tmp.resolve("layout/blobs/sha256/" + blob.digest().hex()));
    ExpectedLogs.warning("; the read gets EIO");
    assertEquals(
        FanotifyResponse.denyErrno(Errno.EIO),
        g.access(data, 0, 4096, READER).get(10, TimeUnit.SECONDS));
    assertEquals(1, harness.stats().readsFailed.sum());
    assertTrue(g.isMarked(data), "still marked: nothing was filled");
  }

  @Test
  void unmountedImagesAreReleasedAndTheirMarksRemoved() throws Exception {
    String ref = packAndStart(1L << 20);
    JsonNode mount = call("register", ref).path("mount");
    Path data = Path.of(mount.path("options").asText().substring("device=".length()));
    FakeFanotifyGroup g = harness.group;
    assertTrue(g.isMarked(data));
    assertEquals(1, harness.daemon.frontend().served().size());
    // nothing mounts it here: a release with no grace lets it go
    assertEquals(
        List.of(harness.catalog().list().get(0).fsid()),
        harness.daemon.fanotify().releaseUnmounted(Duration.ZERO));
    assertFalse(g.isMarked(data));
    assertTrue(harness.daemon.frontend().served().isEmpty());
    // prepared again on the next mount
    call("register", ref);
    assertTrue(g.isMarked(data));
  }

  /**
   * An image waits for the mount its prepare announced: an unmount elsewhere does not release it
   * before its client says the mount is made (or the grace ends); once said, an unmount releases it
   * at once. Two images sharing the blob keep the file watched until the last one goes.
   */
  @Test
  void anImageStaysServedUntilItsAnnouncedMountIsMadeThenAnUnmountReleasesItAtOnce()
      throws Exception {
    String ref = packAndStart(1L << 20);
    JsonNode reply = call("register", ref);
    String fsid = reply.path("image").path("fsid").asText();
    Path data = Path.of(reply.path("mount").path("options").asText().substring("device=".length()));
    DaemonApi api = new DaemonApi(harness.daemon);
    FakeFanotifyGroup g = harness.group;
    // another client's unmount comes before this client's mount(2): the image must stay watched
    assertEquals(
        0, api.handle("unmounted", Json.MAPPER.createObjectNode()).path("released").size());
    assertTrue(g.isMarked(data));
    assertEquals(List.of(), harness.daemon.fanotify().releaseUnmounted(Duration.ofMinutes(1)));
    // mounted (here: said to be); its unmount — nothing in mountinfo names it — releases it without
    // any grace
    api.handle("mounted", Json.MAPPER.createObjectNode().put("fsid", fsid));
    JsonNode released = api.handle("unmounted", Json.MAPPER.createObjectNode()).path("released");
    assertEquals(1, released.size());
    assertEquals(fsid, released.get(0).asText());
    assertFalse(g.isMarked(data));
    // a failed mount says which image it was for: released at once too
    call("register", ref);
    assertTrue(g.isMarked(data));
    assertEquals(
        1,
        api.handle("unmounted", Json.MAPPER.createObjectNode().put("fsid", fsid))
            .path("released")
            .size());
    assertFalse(g.isMarked(data));
  }

  /**
   * A complete file needs no mark, and must keep none: a predecessor whose group was adopted may
   * have left one (it died before removing it), and a mark nobody watches sends accesses to a
   * daemon that denies them.
   */
  @Test
  void aStaleMarkOnACompleteFileIsRemovedWhenTheImageIsPrepared() throws Exception {
    String ref = packAndStart(1L << 20);
    JsonNode mount = call("register", ref).path("mount");
    Path data = Path.of(mount.path("options").asText().substring("device=".length()));
    FakeFanotifyGroup g = harness.group;
    long size = Files.size(data);
    for (long off = 0; off < size; off += 1 << 20) {
      assertEquals(
          FanotifyResponse.ALLOW,
          g.access(data, off, Math.min(1 << 20, size - off), READER).get(10, TimeUnit.SECONDS));
    }
    Await.until(() -> !g.isMarked(data), "the complete file unmarked");
    harness.daemon.fanotify().releaseUnmounted(Duration.ZERO);
    g.mark(data); // what a crashed predecessor could leave on the group
    call("register", ref);
    assertFalse(g.isMarked(data), "prepared again: the complete file carries no mark");
  }

  @Test
  void aFileCompletedWithoutAnAccessLosesItsMarkToo() throws Exception {
    String ref = packAndStart(2L << 20);
    JsonNode mount = call("register", ref).path("mount");
    Path data = Path.of(mount.path("options").asText().substring("device=".length()));
    FakeFanotifyGroup g = harness.group;
    assertTrue(g.isMarked(data));
    // prefetch (or read-ahead) fills the last chunks after the last access: no event will notice
    var served = harness.daemon.frontend().served().get(0);
    served.prefetch(0, Files.size(data), Runnable::run).get(10, TimeUnit.SECONDS);
    assertTrue(g.isMarked(data), "nothing has looked yet");
    harness.daemon.fanotify().unmarkComplete();
    assertFalse(g.isMarked(data), "complete: unmarked, later reads raise no event");
  }
}

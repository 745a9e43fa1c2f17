package dev.lazypull.snapshotter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.FieldMask;
import dev.lazypull.containerd.api.snapshots.CleanupRequest;
import dev.lazypull.containerd.api.snapshots.CommitSnapshotRequest;
import dev.lazypull.containerd.api.snapshots.Info;
import dev.lazypull.containerd.api.snapshots.Kind;
import dev.lazypull.containerd.api.snapshots.ListSnapshotsRequest;
import dev.lazypull.containerd.api.snapshots.MountsRequest;
import dev.lazypull.containerd.api.snapshots.PrepareSnapshotRequest;
import dev.lazypull.containerd.api.snapshots.RemoveSnapshotRequest;
import dev.lazypull.containerd.api.snapshots.SnapshotsGrpc;
import dev.lazypull.containerd.api.snapshots.StatSnapshotRequest;
import dev.lazypull.containerd.api.snapshots.UpdateSnapshotRequest;
import dev.lazypull.containerd.api.snapshots.UsageRequest;
import dev.lazypull.containerd.api.snapshots.UsageResponse;
import dev.lazypull.containerd.api.snapshots.ViewSnapshotRequest;
import dev.lazypull.containerd.api.types.Mount;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * The snapshots API over its real wire (gRPC on a unix socket, the generated stubs containerd's
 * protos describe) with containerd's contract — the cases of containerd's snapshotter test suite
 * that need no mounting — and the remote-snapshot label protocol over a fake daemon. No root
 * needed: nothing is mounted.
 */
class SnapshotterTest {
  private static final String M = "sha256:" + "a".repeat(64);
  private static final String BOOT = "sha256:" + "b".repeat(64);
  private static final String BLOB = "sha256:" + "c".repeat(64);

  @TempDir Path tmp;
  private FakeRemoteLayers remote;
  private Snapshotter snapshotter;
  private UnixGrpc.Listener listener;
  private ManagedChannel channel;
  private SnapshotsGrpc.SnapshotsBlockingStub api;

  @BeforeEach
  void start() throws Exception {
    remote = new FakeRemoteLayers();
    remote.images.put(M, List.of(BOOT, BLOB));
    open();
  }

  private void open() throws Exception {
    snapshotter = Snapshotter.open(tmp.resolve("root"), remote);
    listener = UnixGrpc.serve(tmp.resolve("snap.sock"), 2, new SnapshotsService(snapshotter));
    channel = UnixGrpc.connect(tmp.resolve("snap.sock"));
    api = SnapshotsGrpc.newBlockingStub(channel);
  }

  @AfterEach
  void stop() {
    channel.shutdownNow();
    listener.close();
    snapshotter.close();
  }

  private void restart() throws Exception {
    stop();
    open();
  }

  private List<Mount> prepare(String key, String parent, Map<String, String> labels) {
    return api.prepare(
            PrepareSnapshotRequest.newBuilder()
                .setKey(key)
                .setParent(parent)
                .putAllLabels(labels)
                .build())
        .getMountsList();
  }

  private List<Mount> prepare(String key, String parent) {
    return prepare(key, parent, Map.of());
  }

  private void commit(String name, String key) {
    api.commit(CommitSnapshotRequest.newBuilder().setName(name).setKey(key).build());
  }

  private Info stat(String key) {
    return api.stat(StatSnapshotRequest.newBuilder().setKey(key).build()).getInfo();
  }

  private void remove(String key) {
    api.remove(RemoveSnapshotRequest.newBuilder().setKey(key).build());
  }

  private List<Info> list(String... filters) {
    List<Info> out = new ArrayList<>();
    api.list(ListSnapshotsRequest.newBuilder().addAllFilters(List.of(filters)).build())
        .forEachRemaining(r -> out.addAll(r.getInfoList()));
    return out;
  }

  private static void assertCode(Status.Code code, Executable call) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call);
    assertEquals(code, e.getStatus().getCode(), e.getStatus().toString());
  }

  private Path upper(Mount m) {
    for (String o : m.getOptionsList()) {
      if (o.startsWith("upperdir=")) {
        return Path.of(o.substring(9));
      }
    }
    return Path.of(m.getSource());
  }

  @Test
  void activeSnapshotsAreBindMountsThenOverlaysOverTheirCommittedParents() throws Exception {
    Mount base = prepare("base-active", "").get(0);
    assertEquals("bind", base.getType());
    assertEquals(List.of("rw", "rbind"), base.getOptionsList());
    Files.writeString(Path.of(base.getSource()).resolve("a"), "layer one");
    commit("base", "base-active");
    Info info = stat("base");
    assertEquals(Kind.COMMITTED, info.getKind());
    assertEquals("", info.getParent());
    assertCode(Status.Code.NOT_FOUND, () -> stat("base-active"));

    Mount top = prepare("top-active", "base").get(0);
    assertEquals("overlay", top.getType());
    assertTrue(
        top.getOptionsList().contains("lowerdir=" + base.getSource()),
        top.getOptionsList().toString());
    assertTrue(top.getOptionsList().stream().anyMatch(o -> o.startsWith("workdir=")));
    Files.writeString(upper(top).resolve("b"), "layer two");
    commit("top", "top-active");

    List<Mount> view =
        api.view(ViewSnapshotRequest.newBuilder().setKey("v").setParent("top").build())
            .getMountsList();
    assertEquals("overlay", view.get(0).getType());
    assertTrue(
        view.get(0).getOptionsList().stream().noneMatch(o -> o.startsWith("upperdir=")),
        "a view is ro");
    assertTrue(
        view.get(0).getOptionsList().contains("lowerdir=" + upper(top) + ":" + base.getSource()),
        "nearest parent first: " + view.get(0).getOptionsList());
    assertEquals(Kind.VIEW, stat("v").getKind());
    List<Mount> oneParentView =
        api.view(ViewSnapshotRequest.newBuilder().setKey("v1").setParent("base").build())
            .getMountsList();
    assertEquals(List.of("ro", "rbind"), oneParentView.get(0).getOptionsList());
    assertEquals(base.getSource(), oneParentView.get(0).getSource());
    assertEquals(view, api.mounts(MountsRequest.newBuilder().setKey("v").build()).getMountsList());
  }

  @Test
  void containerdErrorClassesForKeysParentsAndKinds() {
    prepare("a", "");
    assertCode(Status.Code.ALREADY_EXISTS, () -> prepare("a", ""));
    assertCode(Status.Code.NOT_FOUND, () -> prepare("b", "missing"));
    assertCode(Status.Code.INVALID_ARGUMENT, () -> prepare("b", "a")); // parent not committed
    assertCode(Status.Code.INVALID_ARGUMENT, () -> prepare("", ""));
    assertCode(Status.Code.NOT_FOUND, () -> commit("x", "missing"));
    api.view(ViewSnapshotRequest.newBuilder().setKey("view").build());
    assertCode(
        Status.Code.FAILED_PRECONDITION, () -> commit("x", "view")); // only active snapshots commit
    commit("c", "a");
    assertCode(Status.Code.ALREADY_EXISTS, () -> commit("c", "view"));
    assertCode(
        Status.Code.FAILED_PRECONDITION,
        () -> api.mounts(MountsRequest.newBuilder().setKey("c").build()));
    assertCode(
        Status.Code.NOT_FOUND, () -> api.mounts(MountsRequest.newBuilder().setKey("nope").build()));
    prepare("child", "c");
    assertCode(Status.Code.FAILED_PRECONDITION, () -> remove("c")); // has a child
    remove("child");
    remove("c");
    assertCode(Status.Code.NOT_FOUND, () -> remove("c"));
    assertCode(Status.Code.NOT_FOUND, () -> stat("c"));
  }

  @Test
  void labelsAreReplacedOnCommitAndUpdatedByFieldPath() {
    prepare("k", "", Map.of("keep", "no", "x", "1"));
    api.commit(
        CommitSnapshotRequest.newBuilder()
            .setName("n")
            .setKey("k")
            .putLabels("a", "1")
            .putLabels("b", "2")
            .build());
    assertEquals(Map.of("a", "1", "b", "2"), stat("n").getLabelsMap());
    Info want = Info.newBuilder().setName("n").putLabels("a", "10").putLabels("c", "3").build();
    Info got =
        api.update(
                UpdateSnapshotRequest.newBuilder()
                    .setInfo(want)
                    .setUpdateMask(FieldMask.newBuilder().addPaths("labels.a").addPaths("labels.b"))
                    .build())
            .getInfo();
    assertEquals(
        Map.of("a", "10"), got.getLabelsMap(), "labels.b absent from the request: removed");
    got = api.update(UpdateSnapshotRequest.newBuilder().setInfo(want).build()).getInfo();
    assertEquals(Map.of("a", "10", "c", "3"), got.getLabelsMap(), "no mask: all labels replaced");
    assertCode(
        Status.Code.INVALID_ARGUMENT,
        () ->
            api.update(
                UpdateSnapshotRequest.newBuilder()
                    .setInfo(want)
                    .setUpdateMask(FieldMask.newBuilder().addPaths("parent"))
                    .build()));
    assertCode(
        Status.Code.NOT_FOUND,
        () ->
            api.update(
                UpdateSnapshotRequest.newBuilder()
                    .setInfo(Info.newBuilder().setName("nope"))
                    .build()));
    assertTrue(got.getUpdatedAt().getSeconds() >= got.getCreatedAt().getSeconds());
  }

  @Test
  void walkFiltersAsContainerdWritesThem() {
    prepare("p1", "", Map.of("containerd.io/snapshot.ref", "sha256:1"));
    commit("one", "p1");
    api.commit(
        CommitSnapshotRequest.newBuilder()
            .setName("two")
            .setKey(prepare("p2", "one").isEmpty() ? "" : "p2")
            .putLabels("containerd.io/snapshot.ref", "sha256:2")
            .putLabels("team", "x y")
            .build());
    prepare("active", "two");
    assertEquals(List.of("active", "one", "two"), names(list()));
    assertEquals(
        List.of("two"),
        names(list("labels.\"containerd.io/snapshot.ref\"==sha256:2,parent==\"one\"")));
    assertEquals(
        List.of(), names(list("labels.\"containerd.io/snapshot.ref\"==sha256:2,parent==\"\"")));
    assertEquals(List.of("active"), names(list("kind==Active")));
    assertEquals(
        List.of("active", "one"), names(list("kind==Active", "name==one")), "filters are or-ed");
    assertEquals(List.of("two"), names(list("labels.team==\"x y\"")));
    assertEquals(
        List.of("two"),
        names(list("labels.\"containerd.io/snapshot.ref\"")),
        "presence (one lost its Prepare label at Commit: labels are replaced)");
    assertEquals(List.of("one", "two"), names(list("name~=^(one|two)$")));
    assertEquals(List.of("active", "one"), names(list("name!=two")));
    assertCode(Status.Code.INVALID_ARGUMENT, () -> list("name=="));
    assertCode(Status.Code.INVALID_ARGUMENT, () -> list("labels.\"unterminated==x"));
  }

  private static List<String> names(List<Info> infos) {
    return infos.stream().map(Info::getName).sorted().toList();
  }

  @Test
  void usageCountsAnActiveUpperNowAndACommittedLayerAtCommit() throws Exception {
    Mount m = prepare("u", "").get(0);
    Files.write(Path.of(m.getSource()).resolve("f"), new byte[100_000]);
    UsageResponse active = api.usage(UsageRequest.newBuilder().setKey("u").build());
    assertTrue(active.getSize() >= 100_000, "allocated bytes: " + active.getSize());
    assertEquals(2, active.getInodes(), "the directory and its file");
    commit("uc", "u");
    Files.write(
        Path.of(m.getSource()).resolve("g"), new byte[100_000]); // not counted: measured at commit
    UsageResponse committed = api.usage(UsageRequest.newBuilder().setKey("uc").build());
    assertEquals(active.getSize(), committed.getSize());
    assertEquals(2, committed.getInodes());
  }

  @Test
  void metadataSurvivesARestartAndCleanupRemovesAbandonedDirectories() throws Exception {
    prepare("a", "");
    commit("base", "a");
    prepare("live", "base", Map.of("l", "v"));
    restart();
    assertEquals(Kind.COMMITTED, stat("base").getKind());
    assertEquals(Map.of("l", "v"), stat("live").getLabelsMap());
    assertEquals("base", stat("live").getParent());
    assertCode(Status.Code.ALREADY_EXISTS, () -> prepare("live", "base"));
    Path snapshots = tmp.resolve("root/snapshots");
    Files.createDirectories(
        snapshots.resolve("999/fs")); // a crash between a directory and its record
    remove("live");
    api.cleanup(CleanupRequest.getDefaultInstance());
    try (var s = Files.list(snapshots)) {
      assertEquals(1, s.count(), "only base's directory is left");
    }
    prepare("next", "base");
    assertTrue(
        Files.isDirectory(
            upper(api.mounts(MountsRequest.newBuilder().setKey("next").build()).getMounts(0))),
        "ids are not reused after a restart");
  }

  @Test
  void remoteLayersAreCommittedUnderTheirTargetAndAnsweredAlreadyExists() throws Exception {
    Map<String, String> l1 =
        Map.of(
            RemoteLayers.LABEL_TARGET,
            "chain1",
            RemoteLayers.LABEL_IMAGE_REF,
            "reg/app:v1",
            RemoteLayers.LABEL_MANIFEST,
            M,
            RemoteLayers.LABEL_LAYER,
            BOOT);
    assertCode(Status.Code.ALREADY_EXISTS, () -> prepare("default/1/extract chain1", "", l1));
    assertCode(Status.Code.NOT_FOUND, () -> stat("default/1/extract chain1"));
    Info c1 = stat("chain1");
    assertEquals(Kind.COMMITTED, c1.getKind());
    assertEquals("chain1", c1.getLabelsOrThrow(RemoteLayers.LABEL_TARGET));
    assertEquals("image", c1.getLabelsOrThrow(RemoteLayers.LABEL_LAZY_ROLE));
    assertEquals(1, remote.mounted.size(), "the image was mounted once");
    Map<String, String> l2 =
        Map.of(
            RemoteLayers.LABEL_TARGET,
            "chain2",
            RemoteLayers.LABEL_IMAGE_REF,
            "reg/app:v1",
            RemoteLayers.LABEL_MANIFEST,
            M,
            RemoteLayers.LABEL_LAYER,
            BLOB);
    assertCode(
        Status.Code.INVALID_ARGUMENT,
        () -> prepare("k2", "", l2)); // a blob layer without its bootstrap
    assertCode(Status.Code.ALREADY_EXISTS, () -> prepare("k2", "chain1", l2));
    assertEquals("placeholder", stat("chain2").getLabelsOrThrow(RemoteLayers.LABEL_LAZY_ROLE));
    assertEquals(
        List.of("chain2"),
        names(list("labels.\"containerd.io/snapshot.ref\"==chain2,parent==\"chain1\"")),
        "containerd finds the target as its metadata layer looks for it");
    assertCode(
        Status.Code.ALREADY_EXISTS,
        () -> prepare("again", "", l1)); // target exists: nothing mounted
    assertEquals(1, remote.mounted.size());

    Map<String, String> bad =
        Map.of(
            RemoteLayers.LABEL_TARGET,
            "chain9",
            RemoteLayers.LABEL_IMAGE_REF,
            "reg/app:v1",
            RemoteLayers.LABEL_MANIFEST,
            M,
            RemoteLayers.LABEL_LAYER,
            "sha256:" + "9".repeat(64));
    assertCode(Status.Code.INVALID_ARGUMENT, () -> prepare("k9", "chain1", bad));

    List<Mount> c = prepare("container", "chain2");
    assertEquals("overlay", c.get(0).getType());
    Path lazyRoot = tmp.resolve("root/snapshots").resolve(idOf(c1)).resolve("fs");
    assertTrue(
        c.get(0).getOptionsList().contains("lowerdir=" + lazyRoot),
        "the placeholder is left out: " + c.get(0).getOptionsList());
    UsageResponse u = api.usage(UsageRequest.newBuilder().setKey("chain1").build());
    assertEquals(5096, u.getSize(), "the lazy layer's bytes as the daemon reports them");

    remove("container");
    remove("chain2");
    remove("chain1");
    assertEquals(0, remote.mounted.size(), "removing the image layer releases its mount");
  }

  private String idOf(Info lazy) throws Exception {
    try (var s = Files.list(tmp.resolve("root/snapshots"))) {
      for (Path d : s.toList()) {
        if (remote.mounted.contains(d.resolve("fs"))) {
          return d.getFileName().toString();
        }
      }
    }
    throw new AssertionError("no mounted directory for " + lazy.getName());
  }

  @Test
  void ordinaryLayersFallBackAndAStoppedDaemonIsUnavailableNotAWrongMount() throws Exception {
    Map<String, String> ordinary =
        Map.of(
            RemoteLayers.LABEL_TARGET,
            "o1",
            RemoteLayers.LABEL_IMAGE_REF,
            "reg/other:v1",
            RemoteLayers.LABEL_MANIFEST,
            "sha256:" + "e".repeat(64),
            RemoteLayers.LABEL_LAYER,
            "sha256:" + "f".repeat(64));
    List<Mount> m = prepare("extract o1", "", ordinary);
    assertEquals("bind", m.get(0).getType(), "not lazypull: unpacked as usual");
    assertEquals(Kind.ACTIVE, stat("extract o1").getKind());

    Map<String, String> l1 =
        Map.of(
            RemoteLayers.LABEL_TARGET,
            "chain1",
            RemoteLayers.LABEL_IMAGE_REF,
            "reg/app:v1",
            RemoteLayers.LABEL_MANIFEST,
            M,
            RemoteLayers.LABEL_LAYER,
            BOOT);
    remote.daemonDown = true;
    assertCode(Status.Code.UNAVAILABLE, () -> prepare("x chain1", "", l1));
    assertCode(Status.Code.NOT_FOUND, () -> stat("chain1"));
    remote.daemonDown = false;
    assertCode(Status.Code.ALREADY_EXISTS, () -> prepare("x chain1", "", l1));
    prepare("c", "chain1");
    remote.unmount(
        null, remote.mounted.iterator().next()); // the daemon stopped: its mounts are gone
    remote.daemonDown = true;
    assertCode(
        Status.Code.UNAVAILABLE, () -> api.mounts(MountsRequest.newBuilder().setKey("c").build()));
    remote.daemonDown = false;
    assertEquals(
        "overlay",
        api.mounts(MountsRequest.newBuilder().setKey("c").build()).getMounts(0).getType());
    assertEquals(1, remote.mounted.size(), "mounted again before an overlay is handed out");
    assertEquals(0, snapshotter.remountMissing());
    assertFalse(remote.log.isEmpty());
  }
}

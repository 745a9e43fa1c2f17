package dev.lazypull.snapshotter;

import com.google.protobuf.Empty;
import com.google.protobuf.Timestamp;
import dev.lazypull.containerd.api.snapshots.CleanupRequest;
import dev.lazypull.containerd.api.snapshots.CommitSnapshotRequest;
import dev.lazypull.containerd.api.snapshots.Info;
import dev.lazypull.containerd.api.snapshots.ListSnapshotsRequest;
import dev.lazypull.containerd.api.snapshots.ListSnapshotsResponse;
import dev.lazypull.containerd.api.snapshots.MountsRequest;
import dev.lazypull.containerd.api.snapshots.MountsResponse;
import dev.lazypull.containerd.api.snapshots.PrepareSnapshotRequest;
import dev.lazypull.containerd.api.snapshots.PrepareSnapshotResponse;
import dev.lazypull.containerd.api.snapshots.RemoveSnapshotRequest;
import dev.lazypull.containerd.api.snapshots.SnapshotsGrpc;
import dev.lazypull.containerd.api.snapshots.StatSnapshotRequest;
import dev.lazypull.containerd.api.snapshots.StatSnapshotResponse;
import dev.lazypull.containerd.api.snapshots.UpdateSnapshotRequest;
import dev.lazypull.containerd.api.snapshots.UpdateSnapshotResponse;
import dev.lazypull.containerd.api.snapshots.UsageRequest;
import dev.lazypull.containerd.api.snapshots.UsageResponse;
import dev.lazypull.containerd.api.snapshots.ViewSnapshotRequest;
import dev.lazypull.containerd.api.snapshots.ViewSnapshotResponse;
import dev.lazypull.containerd.api.types.Mount;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.time.Instant;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * containerd's snapshots service over a {@link Snapshotter}: requests in, {@link
 * SnapshotException}s out as the gRPC status codes containerd's {@code errdefs.FromGRPC} turns back
 * into the same error classes (NotFound, AlreadyExists, FailedPrecondition, InvalidArgument,
 * Unavailable).
 */
public final class SnapshotsService extends SnapshotsGrpc.SnapshotsImplBase {
  private static final Logger LOG = Logger.getLogger(SnapshotsService.class.getName());

  /** Infos per List message (containerd's proxy sends 100 per message too). */
  private static final int LIST_BATCH = 100;

  private final Snapshotter snapshots;

  public SnapshotsService(Snapshotter snapshots) {
    this.snapshots = snapshots;
  }

  @FunctionalInterface
  private interface Call<T> {
    T run() throws SnapshotException;
  }

  private static <T> void answer(String op, String key, StreamObserver<T> out, Call<T> call) {
    T reply;
    try {
      reply = call.run();
    } catch (SnapshotException e) {
      Level level =
          e.code() == SnapshotException.Code.ALREADY_EXISTS
                  || e.code() == SnapshotException.Code.NOT_FOUND
              ? Level.FINE
              : Level.WARNING;
      LOG.log(level, () -> op + " " + key + ": " + e.getMessage());
      out.onError(status(e).asRuntimeException());
      return;
    } catch (RuntimeException e) {
      LOG.log(Level.SEVERE, op + " " + key + " failed", e);
      out.onError(Status.INTERNAL.withDescription(op + " " + key + ": " + e).asRuntimeException());
      return;
    }
    out.onNext(reply);
    out.onCompleted();
  }

  static Status status(SnapshotException e) {
    Status s =
        switch (e.code()) {
          case NOT_FOUND -> Status.NOT_FOUND;
          case ALREADY_EXISTS -> Status.ALREADY_EXISTS;
          case FAILED_PRECONDITION -> Status.FAILED_PRECONDITION;
          case INVALID_ARGUMENT -> Status.INVALID_ARGUMENT;
          case UNAVAILABLE -> Status.UNAVAILABLE;
          case INTERNAL -> Status.INTERNAL;
        };
    return s.withDescription(e.getMessage());
  }

  @Override
  public void prepare(PrepareSnapshotRequest r, StreamObserver<PrepareSnapshotResponse> out) {
    answer(
        "prepare",
        r.getKey(),
        out,
        () ->
            PrepareSnapshotResponse.newBuilder()
                .addAllMounts(
                    mounts(snapshots.prepare(r.getKey(), r.getParent(), r.getLabelsMap())))
                .build());
  }

  @Override
  public void view(ViewSnapshotRequest r, StreamObserver<ViewSnapshotResponse> out) {
    answer(
        "view",
        r.getKey(),
        out,
        () ->
            ViewSnapshotResponse.newBuilder()
                .addAllMounts(mounts(snapshots.view(r.getKey(), r.getParent(), r.getLabelsMap())))
                .build());
  }

  @Override
  public void mounts(MountsRequest r, StreamObserver<MountsResponse> out) {
    answer(
        "mounts",
        r.getKey(),
        out,
        () ->
            MountsResponse.newBuilder().addAllMounts(mounts(snapshots.mounts(r.getKey()))).build());
  }

  @Override
  public void commit(CommitSnapshotRequest r, StreamObserver<Empty> out) {
    answer(
        "commit",
        r.getKey(),
        out,
        () -> {
          snapshots.commit(r.getName(), r.getKey(), r.getLabelsMap());
          return Empty.getDefaultInstance();
        });
  }

  @Override
  public void remove(RemoveSnapshotRequest r, StreamObserver<Empty> out) {
    answer(
        "remove",
        r.getKey(),
        out,
        () -> {
          snapshots.remove(r.getKey());
          return Empty.getDefaultInstance();
        });
  }

  @Override
  public void stat(StatSnapshotRequest r, StreamObserver<StatSnapshotResponse> out) {
    answer(
        "stat",
        r.getKey(),
        out,
        () -> StatSnapshotResponse.newBuilder().setInfo(info(snapshots.stat(r.getKey()))).build());
  }

  @Override
  public void update(UpdateSnapshotRequest r, StreamObserver<UpdateSnapshotResponse> out) {
    answer(
        "update",
        r.getInfo().getName(),
        out,
        () -> {
          Info i = r.getInfo();
          SnapshotInfo want =
              new SnapshotInfo(
                  i.getName(), i.getParent(), Kind.ACTIVE, i.getLabelsMap(), null, null);
          List<String> paths = r.hasUpdateMask() ? r.getUpdateMask().getPathsList() : List.of();
          return UpdateSnapshotResponse.newBuilder()
              .setInfo(info(snapshots.update(want, paths)))
              .build();
        });
  }

  @Override
  public void list(ListSnapshotsRequest r, StreamObserver<ListSnapshotsResponse> out) {
    List<SnapshotInfo> all;
    try {
      all = snapshots.walk(r.getFiltersList());
    } catch (SnapshotException e) {
      out.onError(status(e).asRuntimeException());
      return;
    }
    for (int i = 0; i < all.size(); i += LIST_BATCH) {
      ListSnapshotsResponse.Builder b = ListSnapshotsResponse.newBuilder();
      all.subList(i, Math.min(all.size(), i + LIST_BATCH)).forEach(s -> b.addInfo(info(s)));
      out.onNext(b.build());
    }
    out.onCompleted();
  }

  @Override
  public void usage(UsageRequest r, StreamObserver<UsageResponse> out) {
    answer(
        "usage",
        r.getKey(),
        out,
        () -> {
          SnapshotUsage u = snapshots.usage(r.getKey());
          return UsageResponse.newBuilder().setSize(u.size()).setInodes(u.inodes()).build();
        });
  }

  @Override
  public void cleanup(CleanupRequest r, StreamObserver<Empty> out) {
    answer(
        "cleanup",
        "",
        out,
        () -> {
          snapshots.cleanup();
          return Empty.getDefaultInstance();
        });
  }

  static List<Mount> mounts(List<MountSpec> specs) {
    return specs.stream()
        .map(
            m ->
                Mount.newBuilder()
                    .setType(m.type())
                    .setSource(m.source())
                    .addAllOptions(m.options())
                    .build())
        .toList();
  }

  static Info info(SnapshotInfo s) {
    dev.lazypull.containerd.api.snapshots.Kind k =
        switch (s.kind()) {
          case VIEW -> dev.lazypull.containerd.api.snapshots.Kind.VIEW;
          case ACTIVE -> dev.lazypull.containerd.api.snapshots.Kind.ACTIVE;
          case COMMITTED -> dev.lazypull.containerd.api.snapshots.Kind.COMMITTED;
        };
    return Info.newBuilder()
        .setName(s.name())
        .setParent(s.parent())
        .setKind(k)
        .putAllLabels(s.labels())
        .setCreatedAt(timestamp(s.created()))
        .setUpdatedAt(timestamp(s.updated()))
        .build();
  }

  static Timestamp timestamp(Instant t) {
    return Timestamp.newBuilder().setSeconds(t.getEpochSecond()).setNanos(t.getNano()).build();
  }
}

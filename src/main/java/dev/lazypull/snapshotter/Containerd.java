package dev.lazypull.snapshotter;

import com.google.protobuf.ByteString;
import com.google.protobuf.FieldMask;
import dev.lazypull.containerd.api.content.ContentGrpc;
import dev.lazypull.containerd.api.content.Info;
import dev.lazypull.containerd.api.content.UpdateRequest;
import dev.lazypull.containerd.api.content.WriteAction;
import dev.lazypull.containerd.api.content.WriteContentRequest;
import dev.lazypull.containerd.api.content.WriteContentResponse;
import dev.lazypull.containerd.api.images.ImagesGrpc;
import dev.lazypull.containerd.api.leases.LeasesGrpc;
import dev.lazypull.containerd.api.snapshots.SnapshotsGrpc;
import io.grpc.ClientInterceptor;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.AbstractStub;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A containerd client over its gRPC socket: the images, content, leases and snapshots services,
 * each call in one namespace ({@code containerd-namespace} header) and, once {@link #useLease} is
 * called, under one lease ({@code containerd-lease}), so nothing written is collected before the
 * image that references it exists.
 */
public final class Containerd implements AutoCloseable {
  private static final Metadata.Key<String> NAMESPACE =
      Metadata.Key.of("containerd-namespace", Metadata.ASCII_STRING_MARSHALLER);
  private static final Metadata.Key<String> LEASE =
      Metadata.Key.of("containerd-lease", Metadata.ASCII_STRING_MARSHALLER);

  /** Bytes per content Write message. */
  private static final int WRITE_CHUNK = 1 << 20;

  private final ManagedChannel channel;
  private final Path address;
  private final String namespace;
  private final Duration deadline;
  private String lease;

  public Containerd(Path address, String namespace, Duration deadline) {
    this.channel = UnixGrpc.connect(address);
    this.address = address;
    this.namespace = namespace;
    this.deadline = deadline;
  }

  public Path address() {
    return address;
  }

  public String namespace() {
    return namespace;
  }

  /** Makes every later call run under lease {@code id} (null: none). */
  public void useLease(String id) {
    this.lease = id;
  }

  private ClientInterceptor headers() {
    Metadata h = new Metadata();
    h.put(NAMESPACE, namespace);
    if (lease != null) {
      h.put(LEASE, lease);
    }
    return MetadataUtils.newAttachHeadersInterceptor(h);
  }

  private <S extends AbstractStub<S>> S bound(S stub) {
    return stub.withInterceptors(headers())
        .withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS);
  }

  public ImagesGrpc.ImagesBlockingStub images() {
    return bound(ImagesGrpc.newBlockingStub(channel));
  }

  public LeasesGrpc.LeasesBlockingStub leases() {
    return bound(LeasesGrpc.newBlockingStub(channel));
  }

  public SnapshotsGrpc.SnapshotsBlockingStub snapshots() {
    return bound(SnapshotsGrpc.newBlockingStub(channel));
  }

  public ContentGrpc.ContentBlockingStub content() {
    return bound(ContentGrpc.newBlockingStub(channel));
  }

  /**
   * Writes one object into the content store (verified by containerd against {@code digest} and
   * {@code size}), with {@code labels}; an object the store has already gets the labels instead.
   */
  public void writeContent(
      String digest, long size, ReadableByteChannel data, Map<String, String> labels)
      throws IOException {
    BlockingQueue<Object> replies = new ArrayBlockingQueue<>(4);
    StreamObserver<WriteContentRequest> out =
        bound(ContentGrpc.newStub(channel))
            .write(
                new StreamObserver<>() {
                  @Override
                  public void onNext(WriteContentResponse r) {
                    replies.add(r);
                  }

                  @Override
                  public void onError(Throwable t) {
                    replies.add(t);
                  }

                  @Override
                  public void onCompleted() {
                    replies.add(Boolean.TRUE);
                  }
                });
    String ref = "lazypull-" + digest;
    long offset = 0;
    ByteBuffer buf = ByteBuffer.allocate((int) Math.min(WRITE_CHUNK, Math.max(size, 1)));
    try {
      while (offset < size) {
        buf.clear();
        while (buf.hasRemaining() && offset + buf.position() < size) {
          if (data.read(buf) < 0) {
            break;
          }
        }
        buf.flip();
        if (!buf.hasRemaining()) {
          throw new IOException(
              "content " + digest + " ended after " + offset + " of " + size + " bytes");
        }
        out.onNext(
            WriteContentRequest.newBuilder()
                .setAction(WriteAction.WRITE)
                .setRef(ref)
                .setTotal(size)
                .setExpected(digest)
                .setOffset(offset)
                .setData(ByteString.copyFrom(buf))
                .build());
        offset += buf.limit();
        if (await(replies, digest) == null) {
          updateLabels(digest, labels);
          return;
        }
      }
      out.onNext(
          WriteContentRequest.newBuilder()
              .setAction(WriteAction.COMMIT)
              .setRef(ref)
              .setTotal(size)
              .setExpected(digest)
              .setOffset(offset)
              .putAllLabels(labels)
              .build());
      if (await(replies, digest) == null) {
        updateLabels(digest, labels);
        return;
      }
      out.onCompleted();
    } catch (IOException | RuntimeException e) {
      out.onError(Status.CANCELLED.withDescription(e.getMessage()).asRuntimeException());
      throw e;
    }
  }

  /** The next reply of a write; null when the store has the object already. */
  private WriteContentResponse await(BlockingQueue<Object> replies, String digest)
      throws IOException {
    Object r;
    try {
      r = replies.poll(deadline.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted writing " + digest);
    }
    if (r == null) {
      throw new IOException(
          "containerd did not answer a write of "
              + digest
              + " within "
              + deadline.toSeconds()
              + " s");
    }
    if (r instanceof StatusRuntimeException e) {
      if (e.getStatus().getCode() == Status.Code.ALREADY_EXISTS) {
        return null;
      }
      throw new IOException(
          "writing " + digest + " into containerd's content store: " + e.getStatus(), e);
    }
    if (r instanceof Throwable t) {
      throw new IOException("writing " + digest + ": " + t, t);
    }
    if (r instanceof WriteContentResponse w) {
      return w;
    }
    throw new IOException("writing " + digest + ": the stream ended early");
  }

  /** Sets {@code labels} on an object of the content store (leaving its other labels). */
  public void updateLabels(String digest, Map<String, String> labels) {
    if (labels.isEmpty()) {
      return;
    }
    UpdateRequest.Builder r =
        UpdateRequest.newBuilder()
            .setInfo(Info.newBuilder().setDigest(digest).putAllLabels(labels));
    FieldMask.Builder mask = FieldMask.newBuilder();
    labels.keySet().forEach(k -> mask.addPaths("labels." + k));
    content().update(r.setUpdateMask(mask).build());
  }

  @Override
  public void close() {
    channel.shutdownNow();
    try {
      channel.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}

package dev.lazypull.pack;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.registry.BlobContent;
import dev.lazypull.registry.ImagePusher;
import dev.lazypull.registry.Repository;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

/**
 * Pushes a built image to a registry repository ({@code lazypull pack --push}, {@code convert …
 * HOST/REPO:TAG}).
 *
 * <p>Large content (bootstrap, data blobs) is staged in scratch files in a private temporary
 * directory and uploaded in the background as soon as the builder commits it, so uploads overlap
 * packing; small content (config, digest tables) is uploaded directly. Every blob goes through
 * {@link ImagePusher#pushBlob}: skipped when the repository has it (HEAD), mounted from {@code
 * mountFrom} when given and the registry allows it, else uploaded monolithically or in chunks. The
 * manifest is kept in memory and PUT under the tag by {@link #publish} only after every blob upload
 * succeeded, so a failed push never tags a partial image. {@link #close} waits for (or abandons)
 * running uploads and deletes the scratch directory.
 */
public final class RegistryOutput implements ImageOutput {
  /**
   * Blob uploads at once: enough to overlap a slow link with the next blob, few enough to stay
   * polite.
   */
  private static final int UPLOAD_THREADS = 2;

  private final ImagePusher pusher;
  private final ImageReference.Registry reference;
  private final Repository repository;
  private final String mountFrom;
  private final Progress progress;
  private final ScratchDir scratch;
  private final List<Future<?>> pending = new ArrayList<>();
  private final Map<Digest, byte[]> manifests = new HashMap<>();

  /**
   * @param scratchRoot where the private scratch directory is created (must hold the image's blobs)
   * @param mountFrom a repository on the same registry to mount existing blobs from, or null
   */
  public RegistryOutput(
      ImagePusher pusher,
      ImageReference.Registry reference,
      Path scratchRoot,
      String mountFrom,
      Progress progress)
      throws IOException {
    this.pusher = pusher;
    this.reference = reference;
    this.repository = Repository.of(reference);
    this.mountFrom = mountFrom;
    this.progress = progress;
    this.scratch =
        new ScratchDir(
            scratchRoot, "lazypull-push-", ScratchDir.pool(UPLOAD_THREADS, "lazypull-upload"));
  }

  @Override
  public Path newScratchFile() throws IOException {
    return Files.createFile(scratch.newPath("blob"));
  }

  @Override
  public Descriptor putFile(Path file, String mediaType, Digest digest) throws IOException {
    failIfAnUploadFailed();
    Descriptor d = new Descriptor(mediaType, digest, Files.size(file));
    submit(
        () -> {
          try {
            push(d, fileContent(file, d.size()));
          } finally {
            Files.deleteIfExists(file);
          }
          return null;
        });
    return d;
  }

  @Override
  public Descriptor putBytes(byte[] bytes, String mediaType) throws IOException {
    failIfAnUploadFailed();
    Descriptor d = new Descriptor(mediaType, Digest.of(bytes), bytes.length);
    if (MediaTypes.isManifest(mediaType) || MediaTypes.isIndex(mediaType)) {
      synchronized (manifests) {
        manifests.put(
            d.digest(), bytes.clone()); // PUT to the manifest endpoint by publish, not a blob
      }
      return d;
    }
    push(d, BlobContent.of(bytes.clone()));
    return d;
  }

  private interface Upload {
    Void run() throws IOException;
  }

  private void submit(Upload u) {
    synchronized (pending) {
      pending.add(scratch.workers().submit(u::run));
    }
  }

  private void push(Descriptor d, BlobContent content) throws IOException {
    ImagePusher.PushResult r = pusher.pushBlob(repository, d, content, mountFrom);
    if (r == ImagePusher.PushResult.UPLOADED) {
      progress.bytesPushed.addAndGet(d.size());
    }
    progress.stage(
        switch (r) {
              case EXISTED -> "present  ";
              case MOUNTED -> "mounted  ";
              case UPLOADED -> "uploaded ";
            }
            + d.digest()
            + " ("
            + d.size()
            + " bytes) in "
            + repository);
  }

  /**
   * Waits for every blob upload, then PUTs the manifest under the reference's tag (or by its
   * digest).
   */
  @Override
  public void publish(Descriptor manifest) throws IOException {
    awaitUploads();
    byte[] bytes;
    synchronized (manifests) {
      bytes = manifests.get(manifest.digest());
    }
    if (bytes == null) {
      throw new IllegalStateException(
          "manifest " + manifest.digest() + " was not stored with putBytes");
    }
    if (reference.digest() != null && !reference.digest().equals(manifest.digest())) {
      throw new IOException(
          reference.canonical()
              + ": the built manifest's digest is "
              + manifest.digest()
              + ", not the one in the reference");
    }
    List<String> tags = reference.tag() != null ? List.of(reference.tag()) : List.of();
    pusher.pushManifest(repository, bytes, manifest.mediaType(), tags);
  }

  /**
   * Stops the build at the first failed background upload (refused credentials, a denied
   * repository) instead of packing the rest of a large tree for nothing.
   */
  private void failIfAnUploadFailed() throws IOException {
    List<Future<?>> done = new ArrayList<>();
    synchronized (pending) {
      for (Future<?> f : pending) {
        if (f.isDone()) {
          done.add(f);
        }
      }
    }
    for (Future<?> f : done) {
      try {
        f.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while checking uploads to " + repository);
      } catch (ExecutionException e) {
        throw failure(e);
      }
    }
  }

  private IOException failure(ExecutionException e) {
    Throwable c = e.getCause();
    return c instanceof IOException io
        ? io
        : new IOException("upload to " + repository + " failed: " + c, c);
  }

  private void awaitUploads() throws IOException {
    List<Future<?>> all;
    synchronized (pending) {
      all = new ArrayList<>(pending);
    }
    IOException first = null;
    for (Future<?> f : all) {
      try {
        f.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while waiting for uploads to " + repository);
      } catch (ExecutionException e) {
        if (first == null) {
          first = failure(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }

  @Override
  public String describe() {
    return reference.canonical();
  }

  /** Stops uploads that have not finished (a failed build) and deletes every scratch file. */
  @Override
  public void close() throws IOException {
    scratch.close();
  }

  /** A staged file as upload content, re-readable from any offset (a retried or chunked upload). */
  static BlobContent fileContent(Path file, long size) {
    return new BlobContent() {
      @Override
      public long size() {
        return size;
      }

      @Override
      public InputStream open(long offset) throws IOException {
        FileChannel ch = FileChannel.open(file, StandardOpenOption.READ);
        try {
          ch.position(offset);
        } catch (IOException | RuntimeException e) {
          ch.close();
          throw e;
        }
        return Channels.newInputStream(ch);
      }
    };
  }
}

package dev.lazypull.pack;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageReference;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.Json;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.registry.RawManifest;
import dev.lazypull.registry.RegistryBlobSource;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryImageSource;
import dev.lazypull.registry.Repository;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

/**
 * An ordinary image in a registry, to convert: the manifest (an index resolved by the client's
 * platform), the config, and each layer downloaded whole into a scratch file — sha256 and size
 * verified by {@link RegistryClient#downloadBlob} before a byte is handed out — then read from disk
 * and deleted when its stream closes. Memory stays bounded whatever the layer sizes; disk holds at
 * most the layer being converted and the next one, which downloads in the background meanwhile
 * (layers are converted in manifest order).
 */
public final class RegistrySourceImage implements SourceImage {
  private final String reference;
  private final RegistryClient client;
  private final Repository repository;
  private final Digest manifestDigest;
  private final Manifest manifest;
  private final ScratchDir scratch;
  private final Map<Digest, CompletableFuture<Path>> files = new HashMap<>();

  /** Where the next layer is expected in the manifest's order (for the look-ahead download). */
  private int cursor;

  private RegistrySourceImage(
      String reference,
      RegistryClient client,
      Repository repository,
      Digest digest,
      Manifest manifest,
      ScratchDir scratch) {
    this.reference = reference;
    this.client = client;
    this.repository = repository;
    this.manifestDigest = digest;
    this.manifest = manifest;
    this.scratch = scratch;
  }

  /**
   * Resolves the reference's manifest; layers are downloaded into a private directory under {@code
   * scratchRoot}.
   */
  public static RegistrySourceImage open(
      RegistryClient client, ImageReference.Registry ref, Path scratchRoot) throws IOException {
    RegistryImageSource source = new RegistryImageSource(client, ref);
    RawManifest raw = source.resolveManifest();
    String what = ref.canonical() + " manifest " + raw.digest();
    if (!MediaTypes.isManifest(raw.mediaType())) {
      throw new InvalidImageException(what + " is " + raw.mediaType() + ", not an image manifest");
    }
    Manifest m = Json.parse(raw.bytes(), Manifest.class, what);
    if (m.config() == null) {
      throw new InvalidImageException(what + " has no config");
    }
    ScratchDir dir =
        new ScratchDir(
            scratchRoot, "lazypull-layers-", ScratchDir.pool(2, "lazypull-layer-download"));
    return new RegistrySourceImage(
        ref.canonical(), client, source.repository(), raw.digest(), m, dir);
  }

  @Override
  public String reference() {
    return reference;
  }

  @Override
  public Digest manifestDigest() {
    return manifestDigest;
  }

  @Override
  public Manifest manifest() {
    return manifest;
  }

  /** The config, at most {@link Json#MAX_DOCUMENT_BYTES}, verified against its digest. */
  @Override
  public byte[] config() throws IOException {
    Descriptor c = manifest.config();
    if (c.size() > Json.MAX_DOCUMENT_BYTES) {
      throw new InvalidImageException(
          reference
              + ": config "
              + c.digest()
              + " claims "
              + c.size()
              + " bytes (limit "
              + Json.MAX_DOCUMENT_BYTES
              + ")");
    }
    return new RegistryBlobSource(client, repository)
        .readVerified(c, Json.MAX_DOCUMENT_BYTES, "config");
  }

  /**
   * The layer's verified bytes from its scratch file (downloading it now if the look-ahead has
   * not); starts downloading the next layer in the background. Closing the stream deletes the file.
   */
  @Override
  public InputStream openLayer(Descriptor layer) throws IOException {
    CompletableFuture<Path> f;
    synchronized (this) {
      f = download(layer);
      files.remove(
          layer.digest()); // taken: a layer listed twice (empty layers often are) downloads again
    }
    List<Descriptor> layers = manifest.layers();
    synchronized (this) {
      int i = cursor;
      while (i < layers.size() && !layers.get(i).equals(layer)) {
        i++;
      }
      if (i + 1 < layers.size()) { // look ahead only when layers come in manifest order
        cursor = i + 1;
        download(layers.get(i + 1));
      }
    }
    Path file;
    try {
      file = f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while downloading " + layer.digest());
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      throw c instanceof IOException io
          ? io
          : new IOException(reference + " layer " + layer.digest() + ": " + c, c);
    }
    return new FilterInputStream(Files.newInputStream(file)) {
      @Override
      public void close() throws IOException {
        try {
          super.close();
        } finally {
          Files.deleteIfExists(file);
        }
      }
    };
  }

  private synchronized CompletableFuture<Path> download(Descriptor layer) {
    return files.computeIfAbsent(
        layer.digest(),
        d -> {
          CompletableFuture<Path> f = new CompletableFuture<>();
          scratch
              .workers()
              .execute(
                  () -> {
                    Path file = scratch.newPath(d.hex());
                    try (FileChannel out =
                        FileChannel.open(
                            file,
                            StandardOpenOption.CREATE,
                            StandardOpenOption.WRITE,
                            StandardOpenOption.TRUNCATE_EXISTING)) {
                      client.downloadBlob(repository, layer, out);
                      f.complete(file);
                    } catch (Throwable e) {
                      try {
                        Files.deleteIfExists(file); // never leave unverified bytes behind
                      } catch (IOException ignored) {
                        // the directory goes at close
                      }
                      f.completeExceptionally(e);
                    }
                  });
          return f;
        });
  }

  /** Stops downloads and deletes every scratch file. */
  @Override
  public void close() throws IOException {
    scratch.close();
  }
}

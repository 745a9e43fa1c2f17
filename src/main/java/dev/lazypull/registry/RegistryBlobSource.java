package dev.lazypull.registry;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.image.Descriptor;
import java.io.IOException;
import java.nio.channels.ReadableByteChannel;

/**
 * The blobs of one registry repository as a {@link BlobSource}: each range is one ranged GET
 * (through the repository's mirrors first), streamed straight from the response into the fetch
 * core's buffer.
 */
public final class RegistryBlobSource implements BlobSource {
  private final RegistryClient client;
  private final Repository repository;

  public RegistryBlobSource(RegistryClient client, Repository repository) {
    this.client = client;
    this.repository = repository;
  }

  @Override
  public ReadableByteChannel openRange(Descriptor blob, long offset, long length)
      throws IOException {
    return client.openBlob(repository, blob, offset, length);
  }

  @Override
  public ReadableByteChannel openRangeFromOrigin(Descriptor blob, long offset, long length)
      throws IOException {
    return client.openBlobFromOrigin(repository, blob, offset, length);
  }

  public Repository repository() {
    return repository;
  }

  @Override
  public String describe() {
    return "registry " + repository;
  }
}

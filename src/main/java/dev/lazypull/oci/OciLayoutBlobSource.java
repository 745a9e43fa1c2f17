package dev.lazypull.oci;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.blob.BoundedChannel;
import dev.lazypull.image.Descriptor;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Blobs of a local OCI image layout: {@code DIR/blobs/sha256/<hex>}. */
public final class OciLayoutBlobSource implements BlobSource {
  private final Path dir;

  public OciLayoutBlobSource(Path dir) {
    this.dir = dir.toAbsolutePath().normalize();
  }

  public Path blobPath(Descriptor blob) {
    return dir.resolve("blobs").resolve("sha256").resolve(blob.digest().hex());
  }

  @Override
  public ReadableByteChannel openRange(Descriptor blob, long offset, long length)
      throws IOException {
    if (offset < 0 || length < 0 || offset + length > blob.size()) {
      throw new IOException(
          describe()
              + ": range "
              + offset
              + "+"
              + length
              + " outside blob "
              + blob.digest()
              + " of "
              + blob.size()
              + " bytes");
    }
    Path path = blobPath(blob);
    FileChannel ch;
    try {
      ch = FileChannel.open(path, StandardOpenOption.READ);
    } catch (NoSuchFileException e) {
      throw new IOException(describe() + ": blob " + blob.digest() + " is missing", e);
    }
    try {
      long actual = ch.size();
      if (actual != blob.size()) {
        throw new IOException(
            describe()
                + ": blob "
                + blob.digest()
                + " has "
                + actual
                + " bytes, the manifest says "
                + blob.size());
      }
      ch.position(offset);
      return new BoundedChannel(ch, length, describe() + " blob " + blob.digest().shortHex());
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  @Override
  public String describe() {
    return "oci:" + dir;
  }
}

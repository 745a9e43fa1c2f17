package dev.lazypull.oci;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.blob.ImageSource;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageIndex;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/**
 * Reads images from a local OCI image layout directory ({@code oci-layout}, {@code index.json},
 * {@code blobs/sha256/…}): the embedded default blob source.
 */
public final class OciLayout implements ImageSource {
  public static final String REF_NAME = "org.opencontainers.image.ref.name";

  private final Path dir;
  private final String tag;
  private final OciLayoutBlobSource blobs;

  public OciLayout(Path dir, String tag) {
    this.dir = dir.toAbsolutePath().normalize();
    this.tag = tag;
    this.blobs = new OciLayoutBlobSource(this.dir);
  }

  public Path dir() {
    return dir;
  }

  private String reference() {
    return "oci:" + dir + (tag == null ? "" : ":" + tag);
  }

  @Override
  public LazyImage resolve() throws IOException {
    Descriptor manifestDesc = findManifest();
    byte[] bytes = readVerified(manifestDesc);
    Manifest manifest =
        Json.parse(bytes, Manifest.class, reference() + " manifest " + manifestDesc.digest());
    return LazyImage.of(reference(), manifestDesc.digest(), manifest);
  }

  /** The index.json entry for our tag (or the only entry when no tag was given). */
  public Descriptor findManifest() throws IOException {
    ImageIndex index = readIndex();
    List<Descriptor> entries = index.manifests();
    if (tag == null) {
      if (entries.size() != 1) {
        throw new InvalidImageException(
            reference()
                + ": index.json has "
                + entries.size()
                + " images; name one with oci:DIR:TAG");
      }
      return checkManifestType(entries.get(0));
    }
    Descriptor found = null;
    for (Descriptor d : entries) {
      if (tag.equals(d.annotation(REF_NAME))) {
        found = d; // the last entry wins, as when a tag is re-pointed by appending
      }
    }
    if (found == null) {
      throw new InvalidImageException(
          reference() + ": no image tagged '" + tag + "' in index.json");
    }
    return checkManifestType(found);
  }

  private Descriptor checkManifestType(Descriptor d) throws InvalidImageException {
    if (!MediaTypes.isManifest(d.mediaType())) {
      throw new InvalidImageException(
          reference()
              + ": entry "
              + d.digest()
              + " is "
              + d.mediaType()
              + ", expected an image manifest");
    }
    return d;
  }

  public ImageIndex readIndex() throws IOException {
    Path index = dir.resolve("index.json");
    if (!Files.isRegularFile(dir.resolve("oci-layout"))) {
      throw new NoSuchFileException(dir + " is not an OCI image layout (no oci-layout file)");
    }
    long size = Files.size(index);
    if (size > Json.MAX_DOCUMENT_BYTES) {
      throw new IOException(
          index + " is " + size + " bytes, larger than " + Json.MAX_DOCUMENT_BYTES);
    }
    return Json.parse(Files.readAllBytes(index), ImageIndex.class, index.toString());
  }

  /** Reads a small blob whole and checks its sha256 against the descriptor. */
  public byte[] readVerified(Descriptor d) throws IOException {
    if (d.size() > Json.MAX_DOCUMENT_BYTES) {
      throw new IOException(
          reference() + ": " + d.digest() + " is " + d.size() + " bytes, too large to read whole");
    }
    Path path = blobs.blobPath(d);
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(path);
    } catch (NoSuchFileException e) {
      throw new IOException(reference() + ": blob " + d.digest() + " is missing", e);
    }
    if (bytes.length != d.size()) {
      throw new IOException(
          reference()
              + ": blob "
              + d.digest()
              + " has "
              + bytes.length
              + " bytes, expected "
              + d.size());
    }
    Digest actual = Digest.of(bytes);
    if (!actual.equals(d.digest())) {
      throw new IOException(reference() + ": blob " + d.digest() + " has digest " + actual);
    }
    return bytes;
  }

  @Override
  public BlobSource blobs() {
    return blobs;
  }
}

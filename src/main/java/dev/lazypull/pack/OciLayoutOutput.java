package dev.lazypull.pack;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.oci.OciLayoutWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes a built image into a local OCI image layout ({@code oci:DIR[:TAG]}); scratch files live
 * beside the blobs.
 */
public final class OciLayoutOutput implements ImageOutput {
  private final OciLayoutWriter writer;
  private final String tag;
  private final List<Path> scratch = new ArrayList<>();

  public OciLayoutOutput(Path dir, String tag) throws IOException {
    this.writer = new OciLayoutWriter(dir);
    this.tag = tag;
  }

  @Override
  public synchronized Path newScratchFile() throws IOException {
    Path p = writer.newScratchFile();
    scratch.add(p);
    return p;
  }

  @Override
  public synchronized Descriptor putFile(Path file, String mediaType, Digest digest)
      throws IOException {
    Descriptor d = writer.putScratch(file, mediaType, digest);
    scratch.remove(file);
    return d;
  }

  @Override
  public Descriptor putBytes(byte[] bytes, String mediaType) throws IOException {
    return writer.putBlob(bytes, mediaType);
  }

  @Override
  public void publish(Descriptor manifest) throws IOException {
    writer.tag(manifest, tag);
  }

  @Override
  public String describe() {
    return "oci:" + writer.dir() + (tag == null ? "" : ":" + tag);
  }

  @Override
  public synchronized void close() throws IOException {
    for (Path p : scratch) {
      Files.deleteIfExists(p);
    }
    scratch.clear();
  }
}

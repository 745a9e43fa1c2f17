package dev.lazypull.oci;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageIndex;
import dev.lazypull.image.Json;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.sys.AtomicFiles;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * Writes blobs and tags into an OCI image layout, creating it if needed. Blobs are
 * content-addressed.
 */
public final class OciLayoutWriter {
  private final Path dir;
  private final Path blobDir;

  public OciLayoutWriter(Path dir) throws IOException {
    this.dir = dir.toAbsolutePath().normalize();
    this.blobDir = this.dir.resolve("blobs").resolve("sha256");
    Files.createDirectories(blobDir);
    Path layout = this.dir.resolve("oci-layout");
    if (!Files.exists(layout)) {
      Files.write(layout, "{\"imageLayoutVersion\":\"1.0.0\"}".getBytes(StandardCharsets.UTF_8));
    }
    Path index = this.dir.resolve("index.json");
    if (!Files.exists(index)) {
      writeAtomically(
          index, Json.write(new ImageIndex(2, MediaTypes.OCI_INDEX, List.of(), Map.of())));
    }
  }

  public Path dir() {
    return dir;
  }

  /** Stores bytes as a blob; returns its descriptor. */
  public Descriptor putBlob(byte[] bytes, String mediaType) throws IOException {
    Digest digest = Digest.of(bytes);
    Path target = blobDir.resolve(digest.hex());
    if (!Files.exists(target)) {
      writeAtomically(target, bytes);
    }
    return new Descriptor(mediaType, digest, bytes.length);
  }

  /** Copies a file in as a blob, hashing while copying; returns its descriptor. */
  public Descriptor putBlob(Path file, String mediaType) throws IOException {
    Path tmp = Files.createTempFile(blobDir, ".incoming-", ".tmp");
    try {
      MessageDigest sha = Digest.sha256();
      long size;
      try (InputStream in = Files.newInputStream(file);
          OutputStream out = new DigestOutputStream(Files.newOutputStream(tmp), sha)) {
        size = in.transferTo(out);
      }
      Digest digest = new Digest(HexFormat.of().formatHex(sha.digest()));
      Files.move(
          tmp,
          blobDir.resolve(digest.hex()),
          StandardCopyOption.REPLACE_EXISTING,
          StandardCopyOption.ATOMIC_MOVE);
      return new Descriptor(mediaType, digest, size);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /**
   * A new empty file inside the layout's blob directory, so a finished blob is renamed into place,
   * not copied.
   */
  public Path newScratchFile() throws IOException {
    // Blobs are world-readable like every other file in a layout (createTempFile would make them
    // 0600).
    return Files.createTempFile(
        blobDir,
        ".incoming-",
        ".tmp",
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-r--r--")));
  }

  /**
   * Moves a finished scratch file (from {@link #newScratchFile}) into place as the blob with the
   * digest the caller computed while writing it; returns its descriptor.
   */
  public Descriptor putScratch(Path scratch, String mediaType, Digest digest) throws IOException {
    long size = Files.size(scratch);
    Files.move(
        scratch,
        blobDir.resolve(digest.hex()),
        StandardCopyOption.REPLACE_EXISTING,
        StandardCopyOption.ATOMIC_MOVE);
    return new Descriptor(mediaType, digest, size);
  }

  /** Whether the layout already holds {@code blob} (by digest, with the right size). */
  public boolean hasBlob(Descriptor blob) throws IOException {
    Path p = blobDir.resolve(blob.digest().hex());
    return Files.isRegularFile(p) && Files.size(p) == blob.size();
  }

  /**
   * Stores exactly {@code expected.size()} bytes read from {@code in} as blob {@code expected},
   * hashing while writing. The file appears under its digest only if the size and sha256 match;
   * otherwise nothing is kept and the error names the blob.
   */
  public Descriptor putBlob(Descriptor expected, ReadableByteChannel in) throws IOException {
    Path tmp = newScratchFile();
    try {
      MessageDigest sha = Digest.sha256();
      long size = 0;
      ByteBuffer buf = ByteBuffer.allocate(1 << 20);
      try (FileChannel out = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
        while (in.read(buf.clear()) >= 0) {
          buf.flip();
          sha.update(buf.duplicate());
          size += buf.remaining();
          if (size > expected.size()) {
            throw new IOException(
                "blob "
                    + expected.digest()
                    + ": more than the "
                    + expected.size()
                    + " bytes expected");
          }
          while (buf.hasRemaining()) {
            out.write(buf);
          }
        }
        out.force(false);
      }
      Digest actual = new Digest(HexFormat.of().formatHex(sha.digest()));
      if (size != expected.size() || !actual.equals(expected.digest())) {
        throw new IOException(
            "blob "
                + expected.digest()
                + ": got "
                + size
                + " bytes hashing to "
                + actual
                + ", expected "
                + expected.size()
                + " bytes");
      }
      Files.move(
          tmp,
          blobDir.resolve(actual.hex()),
          StandardCopyOption.REPLACE_EXISTING,
          StandardCopyOption.ATOMIC_MOVE);
      return expected;
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /** Points {@code tag} at a manifest in index.json, replacing any earlier entry with that tag. */
  public void tag(Descriptor manifest, String tag) throws IOException {
    Path indexPath = dir.resolve("index.json");
    ImageIndex index =
        Json.parse(Files.readAllBytes(indexPath), ImageIndex.class, indexPath.toString());
    List<Descriptor> entries = new ArrayList<>();
    for (Descriptor d : index.manifests()) {
      if (tag == null || !tag.equals(d.annotation(OciLayout.REF_NAME))) {
        entries.add(d);
      }
    }
    Map<String, String> annotations = tag == null ? Map.of() : Map.of(OciLayout.REF_NAME, tag);
    entries.add(
        new Descriptor(
            manifest.mediaType(), manifest.digest(), manifest.size(), annotations, null));
    writeAtomically(
        indexPath,
        Json.write(new ImageIndex(2, MediaTypes.OCI_INDEX, entries, index.annotations())));
  }

  private static void writeAtomically(Path target, byte[] bytes) throws IOException {
    AtomicFiles.write(
        target,
        bytes,
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-r--r--")));
  }
}

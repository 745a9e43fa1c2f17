package dev.lazypull.fuzz;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.CatalogException;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageSources;
import dev.lazypull.cli.Main;
import dev.lazypull.erofs.BootstrapHeader;
import dev.lazypull.erofs.BootstrapHeaderTest;
import dev.lazypull.erofs.ByteSource;
import dev.lazypull.erofs.ErofsFormatException;
import dev.lazypull.erofs.ErofsReader;
import dev.lazypull.erofs.FileType;
import dev.lazypull.erofs.InodeRecord;
import dev.lazypull.fscache.CachefilesDecoder;
import dev.lazypull.fscache.CachefilesMsg;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.ImageIndex;
import dev.lazypull.image.InvalidImageException;
import dev.lazypull.image.Json;
import dev.lazypull.image.LazyImage;
import dev.lazypull.image.LazyManifests;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.nbd.protocol.ExportInfo;
import dev.lazypull.nbd.protocol.Nbd;
import dev.lazypull.nbd.protocol.NbdProtocolException;
import dev.lazypull.nbd.protocol.NbdRequest;
import dev.lazypull.nbd.server.Negotiator;
import dev.lazypull.testing.Msgs;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fuzzes every decoder that reads untrusted bytes (the EROFS reader and NBD decoder have their
 * own).
 */
class DecoderFuzzTest {
  @TempDir Path tmp;

  @Test
  void cachefilesMessagesNeverThrow() {
    List<byte[]> seeds =
        List.of(
            Msgs.open(1, 2, "erofs,img", "img", 5),
            Msgs.read(3, 2, 8192, 4096),
            Msgs.close(4, 2),
            Msgs.open(9, 9, "erofs,dom", "a".repeat(64), 7));
    long runs =
        Fuzzer.fuzz(
            "cachefiles",
            seeds,
            Set.of(),
            CachefilesDecoder.MSG_MAX_SIZE,
            input -> {
              CachefilesMsg m = CachefilesDecoder.decode(Msgs.wrap(input), input.length);
              if (m instanceof CachefilesMsg.Open o) {
                assertTrue(o.fd() >= 0 && !o.cookieKey().isEmpty());
              }
            });
    assertTrue(runs > 1000);
  }

  @Test
  void manifestsAndIndexesFailOnlyWithClearErrors() {
    Descriptor boot = new Descriptor(MediaTypes.EROFS_BOOTSTRAP, Digest.of("b".getBytes()), 4096);
    Descriptor blob = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of("d".getBytes()), 1 << 20);
    Descriptor cfg = new Descriptor(MediaTypes.OCI_CONFIG, Digest.of("c".getBytes()), 2);
    byte[] manifest =
        Json.write(LazyManifests.manifest(cfg, boot, List.of(blob), Map.of("k", "v")));
    byte[] index =
        Json.write(
            new ImageIndex(
                2,
                MediaTypes.OCI_INDEX,
                List.of(
                    new Descriptor(
                        MediaTypes.OCI_MANIFEST,
                        Digest.of(manifest),
                        manifest.length,
                        Map.of("org.opencontainers.image.ref.name", "t"),
                        new Descriptor.Platform("amd64", "linux", null))),
                Map.of()));
    long runs =
        Fuzzer.fuzz(
            "manifest",
            List.of(manifest, index),
            Set.of(IOException.class),
            8192,
            input -> {
              Manifest m = Json.parse(input, Manifest.class, "fuzz");
              LazyImage.of("fuzz", Digest.of(input), m);
              Json.parse(input, ImageIndex.class, "fuzz");
              Json.parse(input, JsonNode.class, "fuzz");
            });
    assertTrue(runs > 1000);
    assertTrue(InvalidImageException.class.getSuperclass() == IOException.class);
  }

  @Test
  void bootstrapHeadersFailOnlyWithFormatErrors() throws Exception {
    ByteBuffer b0 = BootstrapHeaderTest.block0(2, true, "ab".repeat(32));
    ByteBuffer b1 = BootstrapHeaderTest.block0(0, false, "");
    long runs =
        Fuzzer.fuzz(
            "erofs-header",
            List.of(b0.array(), b1.array()),
            Set.of(ErofsFormatException.class),
            16384,
            input -> BootstrapHeader.decode(ByteBuffer.wrap(input)));
    assertTrue(runs > 1000);
  }

  @Test
  void nbdRequestsAndNegotiationFailOnlyWithProtocolErrors() {
    Function<int[], byte[]> options =
        ints -> {
          ByteBuffer b = ByteBuffer.allocate(ints.length * 4);
          for (int v : ints) {
            b.putInt(v);
          }
          return b.array();
        };
    // option streams: u32 option, u32 length, payload
    byte[] go =
        ByteBuffer.allocate(64)
            .putInt(Nbd.OPT_GO)
            .putInt(10)
            .putInt(4)
            .put("flat".getBytes(StandardCharsets.US_ASCII))
            .putShort((short) 0)
            .array();
    byte[] meta =
        ByteBuffer.allocate(64)
            .putInt(Nbd.OPT_SET_META_CONTEXT)
            .putInt(27)
            .putInt(4)
            .put("flat".getBytes(StandardCharsets.US_ASCII))
            .putInt(1)
            .putInt(15)
            .put("base:allocation".getBytes(StandardCharsets.US_ASCII))
            .array();
    byte[] request = new NbdRequest(0, Nbd.CMD_READ, 7, 4096, 4096).encode().array();
    ExportInfo export = new ExportInfo("flat", "fuzz", 1 << 20);
    long runs =
        Fuzzer.fuzz(
            "nbd",
            List.of(go, meta, request, options.apply(new int[] {8, 0, 3, 0})),
            Set.of(NbdProtocolException.class),
            4096,
            input -> {
              if (input.length >= Nbd.REQUEST_SIZE) {
                NbdRequest r = NbdRequest.decode(ByteBuffer.wrap(input));
                r.within(1 << 20);
              }
              Negotiator n = new Negotiator(export);
              ByteBuffer b = ByteBuffer.wrap(input);
              while (b.remaining() >= 8) {
                int option = b.getInt();
                long len = Integer.toUnsignedLong(b.getInt());
                if (len > b.remaining()) {
                  n.oversized(option, len);
                  break;
                }
                ByteBuffer payload = b.slice().limit((int) len);
                b.position(b.position() + (int) len);
                n.option(option, payload);
              }
            });
    assertTrue(runs > 1000);
  }

  @Test
  void erofsImagesFailOnlyWithFormatErrors() throws Exception {
    Path tree = Files.createDirectories(tmp.resolve("tree/d"));
    Files.writeString(tree.resolve("f.txt"), "x".repeat(5000));
    Files.createSymbolicLink(tree.resolve("link"), Path.of("d/f.txt"));
    Files.write(tree.resolve("big"), new byte[3 << 16]);
    String ref = "oci:" + tmp.resolve("layout") + ":t";
    assertTrue(
        Main.run("pack", tmp.resolve("tree").toString(), "--chunk-size", "65536", "--output", ref)
            == 0);
    var source = ImageSources.localOnly().open(ref);
    var image = source.resolve();
    byte[] boot = source.readRange(image.bootstrap(), 0, (int) image.bootstrap().size());
    long runs =
        Fuzzer.fuzz(
            "erofs-reader",
            List.of(boot),
            Set.of(IOException.class),
            1 << 20,
            input -> {
              var reader = ErofsReader.open(ByteSource.of(input));
              reader.walk(
                  (path, inode) -> {
                    if (inode.type() == FileType.REGULAR
                        && inode.record().layout() == InodeRecord.CHUNK_BASED) {
                      reader.chunks(inode, c -> {});
                    }
                    reader.xattrs(inode);
                  });
            });
    assertTrue(runs > 100);
  }

  @Test
  void catalogFilesFailOnlyWithCatalogErrors() throws Exception {
    Path state = Files.createDirectories(tmp.resolve("state"));
    Descriptor d = new Descriptor(MediaTypes.EROFS_BLOB, Digest.of("x".getBytes()), 4096);
    Catalog c = Catalog.load(state);
    c.register(
        new ImageRecord(
            "f",
            "d",
            "oci:/x",
            Digest.of("m".getBytes()),
            d,
            List.of(d),
            List.of(d.digest().hex()),
            true),
        false);
    byte[] seed = Files.readAllBytes(state.resolve(Catalog.FILE_NAME));
    long runs =
        Fuzzer.fuzz(
            "catalog",
            List.of(seed, "{\"version\":1}".getBytes(StandardCharsets.UTF_8)),
            Set.of(CatalogException.class),
            16384,
            input -> {
              Files.write(state.resolve(Catalog.FILE_NAME), input);
              Catalog.load(state);
            });
    assertTrue(runs > 100);
  }
}

package dev.lazypull.pack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.erofs.ErofsNode;
import dev.lazypull.erofs.FileType;
import dev.lazypull.tar.TarFormatException;
import dev.lazypull.testing.TarBytes;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Layer application: whiteouts, opaque directories, replacement rules, links, paths through
 * symlinks.
 */
class TarApplierTest {
  @TempDir Path tmp;

  private static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static ErofsNode at(ErofsNode root, String path) {
    ErofsNode n = root;
    for (String c : path.split("/")) {
      n = n == null ? null : n.child(b(c));
    }
    return n;
  }

  @Test
  void appliesLayersWithWhiteoutsOpaqueDirsAndReplacements() throws Exception {
    try (OciLayoutOutput out = new OciLayoutOutput(tmp.resolve("o"), "t");
        ChunkStore store = new ChunkStore(out, 4096, 0, 2, Progress.silent())) {
      TarApplier a = new TarApplier(store, Progress.silent());
      byte[] l1 =
          new TarBytes()
              .entry("d/", '5', "")
              .entry("d/keep", '0', "k")
              .entry("d/gone", '0', "g")
              .entry("o/", '5', "")
              .entry("o/old", '0', "o")
              .entry("f", '0', "file")
              .entry("x", '0', "x")
              .entry(b("hl"), '1', new byte[0], b("x"))
              .end();
      a.apply(new ByteArrayInputStream(l1), "l1", 1, true);
      byte[] l2 =
          new TarBytes()
              .entry("d/.wh.gone", '0', "")
              .entry("o/new", '0', "n")
              .entry("o/.wh..wh..opq", '0', "")
              .entry("f/", '5', "")
              .entry("f/inside", '0', "i")
              .entry("d/", '5', "")
              .entry("new/deep/file", '0', "implicit parents")
              .end();
      a.apply(new ByteArrayInputStream(l2), "l2", 2, true);
      store.finish();
      ErofsNode root = a.root();
      assertNotNull(at(root, "d/keep"), "a directory over a directory keeps its children");
      assertNull(at(root, "d/gone"), "whiteout");
      assertNull(at(root, "d/.wh.gone"), "whiteouts are not stored");
      assertNull(at(root, "o/old"), "opaque: lower entries removed");
      assertNotNull(at(root, "o/new"), "opaque: same-layer entries kept, even before the marker");
      assertEquals(FileType.DIRECTORY, at(root, "f").type(), "a directory replaces a file");
      assertSame(at(root, "x"), at(root, "hl"), "hard link: one node");
      assertEquals(FileType.DIRECTORY, at(root, "new/deep").type());
      assertEquals(1, at(root, "new/deep/file").chunks.length);
      assertTrue(at(root, "new/deep/file").chunks[0] != ErofsNode.HOLE);
    }
  }

  @Test
  void rejectsBrokenLinksAndPathsThroughFiles() throws Exception {
    try (OciLayoutOutput out = new OciLayoutOutput(tmp.resolve("o"), "t");
        ChunkStore store = new ChunkStore(out, 4096, 0, 1, Progress.silent())) {
      TarApplier a = new TarApplier(store, Progress.silent());
      assertThrows(
          TarFormatException.class,
          () ->
              a.apply(
                  new ByteArrayInputStream(
                      new TarBytes().entry(b("hl"), '1', new byte[0], b("missing")).end()),
                  "t",
                  1,
                  false));
      assertThrows(
          TarFormatException.class,
          () ->
              a.apply(
                  new ByteArrayInputStream(
                      new TarBytes().entry("file", '0', "x").entry("file/child", '0', "y").end()),
                  "t",
                  1,
                  false));
      a.apply(
          new ByteArrayInputStream(
              new TarBytes()
                  .entry("real/", '5', "")
                  .symlink("abs", "/real")
                  .symlink("rel", "../../real")
                  .entry("abs/a", '0', "a")
                  .entry("rel/b", '0', "b")
                  .end()),
          "t",
          2,
          false);
      assertNotNull(at(a.root(), "real/a"), "absolute symlink resolved inside the image root");
      assertNotNull(at(a.root(), "real/b"), "'..' stops at the image root");
      assertEquals(FileType.SYMLINK, at(a.root(), "abs").type());
    }
  }
}

package dev.lazypull.tar;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TarBytes;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tar reader against GNU tar's own output in every format, and against hand-made malformed
 * streams.
 */
class TarReaderTest {
  @TempDir Path tmp;

  private static List<TarEntry> readAll(byte[] tar) throws IOException {
    TarReader r = new TarReader(new ByteArrayInputStream(tar), "test.tar");
    List<TarEntry> out = new ArrayList<>();
    TarEntry e;
    while ((e = r.next()) != null) {
      r.data().readAllBytes();
      out.add(e);
    }
    return out;
  }

  @Test
  void readsUstarPaxAndGnuArchivesFromGnuTarWithLongNames() throws Exception {
    Requirements.requireTool("tar");
    String longDir = "d".repeat(120) + "/" + "e".repeat(120);
    String longName = "n".repeat(200);
    String linkTarget = "t".repeat(150);
    String ustarPath =
        "p".repeat(130) + "/" + "u".repeat(90); // ustar: a 155-byte prefix plus a 100-byte name
    Requirements.run(
        "bash",
        "-c",
        "cd '"
            + tmp
            + "' && mkdir -p src/"
            + longDir
            + " && echo hi > src/"
            + longDir
            + "/"
            + longName
            + " && ln -s "
            + linkTarget
            + " src/sym && echo x > src/big-uid && "
            + "chown 3000000:5 src/big-uid && touch -d @1600000000.25 src/sym && mkdir -p src/"
            + ustarPath
            + " && rmdir src/"
            + ustarPath
            + " && echo hi > src/"
            + ustarPath);
    for (String format : new String[] {"gnu", "pax", "ustar"}) {
      Path tar = tmp.resolve(format + ".tar");
      List<String> cmd =
          new ArrayList<>(
              List.of(
                  "tar",
                  "--format=" + format,
                  "--numeric-owner",
                  "-C",
                  tmp.resolve("src").toString(),
                  "-cf",
                  tar.toString()));
      String path = format.equals("ustar") ? ustarPath : longDir + "/" + longName;
      cmd.add(path);
      if (!format.equals("ustar")) {
        cmd.addAll(
            List.of(
                "sym", "big-uid")); // ustar cannot hold a 150-byte link target or a uid over 2^21
      }
      Requirements.run(cmd.toArray(String[]::new));
      List<TarEntry> entries = readAll(Files.readAllBytes(tar));
      TarEntry file = entries.get(0);
      assertEquals(path, file.show(), format);
      assertEquals(3, file.size(), format);
      if (!format.equals("ustar")) {
        TarEntry sym = entries.get(1);
        assertEquals(TarEntry.Type.SYMLINK, sym.type());
        assertEquals(linkTarget, new String(sym.linkTarget(), StandardCharsets.UTF_8), format);
        assertEquals(
            3_000_000L, entries.get(2).uid(), format + ": big uid (base-256 in gnu, pax record)");
      }
    }
  }

  @Test
  void paxCarriesXattrsFractionalMtimeAndRawBytes() throws Exception {
    byte[] latin1 = {'f', (byte) 0xe9, (byte) 0xff};
    byte[] tar =
        new TarBytes()
            .pax("SCHILY.xattr.security.capability", "cap", "mtime", "1600000000.5")
            .entry(latin1, '0', "data".getBytes(StandardCharsets.US_ASCII), new byte[0])
            .end();
    TarEntry e = readAll(tar).get(0);
    assertArrayEquals(latin1, e.name(), "names are raw bytes, not decoded");
    assertArrayEquals(
        "cap".getBytes(StandardCharsets.US_ASCII), e.xattrs().get("security.capability"));
    assertEquals(1_600_000_000L, e.mtimeSec());
    assertEquals(500_000_000, e.mtimeNsec());
  }

  @Test
  void rejectsEscapesLongNamesSparseBadChecksumsAndTruncation() {
    assertMessage(new TarBytes().entry("../etc/passwd", '0', "x").end(), "..");
    assertMessage(new TarBytes().entry("a/../../b", '0', "x").end(), "..");
    assertMessage(
        new TarBytes().pax("path", "x".repeat(256)).entry("short", '0', "x").end(), "255");
    assertMessage(new TarBytes().entry("sparse", 'S', "").end(), "sparse");
    assertMessage(new TarBytes().entry("vol", 'V', "").end(), "unsupported member type");
    byte[] bad = new TarBytes().entry("f", '0', "x").end();
    bad[0] ^= 1;
    assertMessage(bad, "checksum");
    byte[] ok = new TarBytes().entry("f", '0', "0123456789").bytes();
    byte[] truncated = Arrays.copyOf(ok, 512 + 5);
    assertThrows(IOException.class, () -> readAll(truncated));
    assertMessage(Arrays.copyOf(ok, 300), "truncated");
    byte[] badOctal = TarBytes.header("f".getBytes(StandardCharsets.US_ASCII), '0', 0, new byte[0]);
    badOctal[124] = '9';
    fixChecksum(badOctal);
    assertMessage(new TarBytes().raw(badOctal).end(), "size");
    assertMessage(
        new TarBytes().raw("1 x\n".getBytes(StandardCharsets.US_ASCII)).end(), "checksum");
  }

  @Test
  void endsAtZeroBlocksOrAtAHeaderBoundary() throws Exception {
    assertEquals(1, readAll(new TarBytes().entry("f", '0', "x").end()).size());
    assertEquals(1, readAll(new TarBytes().entry("f", '0', "x").bytes()).size());
    TarReader r = new TarReader(new ByteArrayInputStream(new byte[0]), "empty");
    assertNull(r.next());
  }

  private static void assertMessage(byte[] tar, String part) {
    IOException e = assertThrows(IOException.class, () -> readAll(tar));
    assertTrue(
        e.getMessage().contains(part), "message '" + e.getMessage() + "' should mention " + part);
  }

  private static void fixChecksum(byte[] h) {
    for (int i = 148; i < 156; i++) {
      h[i] = ' ';
    }
    long sum = 0;
    for (byte b : h) {
      sum += b & 0xff;
    }
    byte[] s = String.format("%06o\0 ", sum).getBytes(StandardCharsets.US_ASCII);
    System.arraycopy(s, 0, h, 148, 8);
  }
}

package dev.lazypull.pack;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.testing.ErofsMounts;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.Unprivileged;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad input for `lazypull pack` run as an unprivileged user (the jar under setpriv as nobody): an
 * unreadable file is a clear error and publishes nothing; device nodes, fifos and sockets need no
 * privilege to pack and mount back as what they were. Everything nobody touches (the jar included,
 * as a copy) is in a temp dir opened to others, not in the checkout, which nobody may be unable to
 * reach (a clone in root's 0700 home).
 */
class PackBadInputIT {
  @TempDir Path tmp;

  private record Result(int exit, String output) {}

  private static Result packAsNobody(Path jar, Path src, Path layout, String tag) throws Exception {
    List<String> cmd = new ArrayList<>(Unprivileged.asNobody());
    cmd.addAll(
        List.of(
            System.getProperty("java.home") + "/bin/java",
            "-jar",
            jar.toString(),
            "pack",
            src.toString(),
            "--output",
            "oci:" + layout + ":" + tag));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    byte[] out = p.getInputStream().readAllBytes();
    assertTrue(p.waitFor(120, TimeUnit.SECONDS));
    return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
  }

  @Test
  void unprivilegedPackRefusesUnreadableFilesAndStoresSpecialFiles() throws Exception {
    ErofsMounts.requireKernelMounts();
    Requirements.requireTool("setpriv");
    Path work = Files.createDirectories(tmp.resolve("pack-bad-input"));
    Path jar = Unprivileged.stageJar(tmp);
    Requirements.run("chmod", "0777", work.toString());
    Path layout = work.resolve("layout");
    Files.createDirectories(layout);
    Requirements.run("chown", "65534:65534", layout.toString());
    String sh =
        String.join(
            "\n",
            "set -euo pipefail",
            "cd '" + work + "'",
            "mkdir -p secret/sub special; echo public > secret/public; echo hidden > secret/sub/private",
            "chmod 0600 secret/sub/private",
            "mknod special/null c 1 3; mknod special/loop b 7 0; mkfifo special/fifo; echo x > special/file");
    Requirements.run("bash", "-c", sh);
    try (var s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      s.bind(UnixDomainSocketAddress.of(work.resolve("special/sock")));
    }

    Result bad = packAsNobody(jar, work.resolve("secret"), layout, "secret");
    assertEquals(1, bad.exit, bad.output);
    assertTrue(
        bad.output.contains("cannot read")
            && bad.output.contains("sub/private")
            && bad.output.contains("Permission denied"),
        bad.output);
    assertFalse(
        Files.readString(layout.resolve("index.json")).contains("secret"), "nothing tagged");

    Result ok = packAsNobody(jar, work.resolve("special"), layout, "special");
    assertEquals(0, ok.exit, ok.output);
    List<Path> files = ErofsMounts.files(layout, "special");
    ErofsMounts.assertSameListing(
        ErofsMounts.list(work.resolve("special")),
        ErofsMounts.listWithDevices(
            files.get(0), files.subList(1, files.size()), work.resolve("mnt")),
        "special files packed without privileges");
  }
}
